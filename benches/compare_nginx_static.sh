#!/usr/bin/env bash
# Static files from a local directory: assetgate's `dir` backend vs nginx serving the same
# folder (sendfile on, access log off, same worker count), same wrk load, 1 KiB and 100 KiB
# files. Prints req/s and p50/p99 latency (median of RUNS runs each) and the ratio to nginx.
# With BEFORE_BIN set to an older assetgate binary, that build runs in the same matrix as
# `before`.
#
#   benches/compare_nginx_static.sh     # defaults: RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2
#   BEFORE_BIN=/path/to/old/assetgate benches/compare_nginx_static.sh
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
render benches/peers/nginx-origin.conf "$DIR/nginx.conf"

start_bg nginx.log nginx -c "$DIR/nginx.conf" -p "$DIR"
start_assetgate assetgate "$BIN" benches/peers/assetgate-static.toml
if [ -n "${BEFORE_BIN:-}" ]; then start_assetgate before "$BEFORE_BIN" benches/peers/assetgate-static.toml; fi
CONTENDERS+=("nginx=$ORIGIN_PORT")
run_matrix 1k 100k
