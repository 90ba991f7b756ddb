#!/usr/bin/env bash
# Steering rules under load: one assetgate whose host has 20 rules (the last one matches every
# request, so all 20 are evaluated) against one with no rules, both passing through to the same
# nginx origin, same wrk load, 1 KiB and 100 KiB. Prints req/s and p50/p99 (median of RUNS runs)
# and the 20-rule host's ratio to the rule-free one (goal: >= 0.97).
#
#   benches/compare_rules.sh            # defaults: RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2
#
# Needs: nginx, wrk, curl (apt-get install nginx-light wrk curl), a release build (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
require_tools nginx wrk python3 curl
cargo build --release --quiet --bin assetgate
BIN=target/release/assetgate

setup_dir
export ORIGIN_PORT=$(port)
render benches/peers/nginx-origin.conf "$DIR/origin.conf"
start_bg origin.log nginx -c "$DIR/origin.conf" -p "$DIR"
wait_port "$ORIGIN_PORT"
start_assetgate rules20 "$BIN" benches/peers/assetgate-rules20.toml
start_assetgate norules "$BIN" benches/peers/assetgate-proxy.toml
"$BIN" check -c "$DIR/rules20.toml" >/dev/null
export REF=norules
run_matrix 1k 100k
