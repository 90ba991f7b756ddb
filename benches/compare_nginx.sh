#!/usr/bin/env bash
# Pass-through proxy throughput: assetgate vs nginx (proxy_pass, no cache) in front of the same
# nginx origin, same wrk load, for 1 KiB and 100 KiB objects. Prints req/s and p50/p99 latency
# (median of RUNS runs each) and each contender's ratio to nginx. A bare Pingora proxy
# (examples/bare_pingora.rs: no gateway logic at all) runs beside them as the floor, so gateway
# overhead and Pingora overhead can be told apart. With BEFORE_BIN set to an older assetgate
# binary, that build runs in the same matrix as `before`, so before/after come from one run.
#
#   benches/compare_nginx.sh            # defaults: RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2
#   RUNS=5 DURATION=20s BEFORE_BIN=/path/to/old/assetgate benches/compare_nginx.sh
#
# Needs: nginx, wrk, curl (apt-get install nginx-light wrk curl), a release build (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
require_tools nginx wrk python3 curl
cargo build --release --quiet --bin assetgate --example bare_pingora
BIN=target/release/assetgate
BARE=target/release/examples/bare_pingora

setup_dir
export ORIGIN_PORT=$(port) NGINX_PORT=$(port) BARE_PORT=$(port)
render benches/peers/nginx-origin.conf "$DIR/origin.conf"
render benches/peers/nginx-proxy.conf "$DIR/proxy.conf"

start_bg origin.log nginx -c "$DIR/origin.conf" -p "$DIR"
start_bg proxy.log nginx -c "$DIR/proxy.conf" -p "$DIR"
start_bg bare.log "$BARE" "127.0.0.1:$BARE_PORT" "127.0.0.1:$ORIGIN_PORT" "$WORKERS"
start_assetgate assetgate "$BIN" benches/peers/assetgate-proxy.toml
if [ -n "${BEFORE_BIN:-}" ]; then start_assetgate before "$BEFORE_BIN" benches/peers/assetgate-proxy.toml; fi
CONTENDERS+=("nginx=$NGINX_PORT" "pingora=$BARE_PORT")
wait_port "$ORIGIN_PORT"
run_matrix 1k 100k
