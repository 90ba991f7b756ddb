#!/usr/bin/env bash
# Cache hits: assetgate's memory tier vs nginx proxy_cache vs Varnish (malloc storage), each in
# front of the same nginx origin, same wrk load, for 1 KiB, 100 KiB and 1 MiB objects; plus
# assetgate with only its disk tier (`assetgate-disk`) and only its Redis tier
# (`assetgate-redis`, a redis-server of the script's own), for those tiers' hit latency. Every
# contender is warmed first, so every measured request is a hit. Prints req/s and p50/p99
# (median of RUNS runs) and each contender's ratio to nginx.
#
#   benches/compare_cache.sh            # defaults: RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2
#   SIZES="1k" RUNS=1 benches/compare_cache.sh
#   MEMORY_ONLY=1 benches/compare_cache.sh   # just the memory tier against the peers
#   BEFORE_BIN=/path/to/old/assetgate benches/compare_cache.sh   # an older build's memory tier too
#
# Needs: nginx, varnishd, redis-server, wrk, curl (apt-get install nginx-light varnish
# redis-server wrk curl), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
require_tools nginx varnishd redis-server wrk python3 curl
cargo build --release --quiet --bin assetgate
BIN=target/release/assetgate

setup_dir
head -c 1048576 /dev/urandom > "$DIR/files/1m.bin"
chmod a+r "$DIR/files/1m.bin"
export ORIGIN_PORT=$(port) NGINX_PORT=$(port) VARNISH_PORT=$(port) REDIS_PORT=$(port)
render benches/peers/nginx-origin.conf "$DIR/origin.conf"
render benches/peers/nginx-cache.conf "$DIR/nginx-cache.conf"
render benches/peers/varnish.vcl "$DIR/varnish.vcl"
mkdir -p "$DIR/nginx-cache"
chmod a+rwx "$DIR/nginx-cache" "$DIR/tmp"

start_bg origin.log nginx -c "$DIR/origin.conf" -p "$DIR"
start_bg redis.log redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "$DIR/redis.out"
wait_port "$REDIS_PORT"
export TIERS='["memory"]'; start_assetgate assetgate "$BIN" benches/peers/assetgate-cache.toml
if [ -n "${BEFORE_BIN:-}" ]; then start_assetgate before "$BEFORE_BIN" benches/peers/assetgate-cache.toml; fi
if [ -z "${MEMORY_ONLY:-}" ]; then
  export TIERS='["disk"]'; start_assetgate assetgate-disk "$BIN" benches/peers/assetgate-cache.toml
  export TIERS='["redis"]'; start_assetgate assetgate-redis "$BIN" benches/peers/assetgate-cache.toml
fi
start_bg nginx-cache.log nginx -c "$DIR/nginx-cache.conf" -p "$DIR"
# Two thread pools, as the others have two workers; -F: foreground, so the trap stops it.
start_bg varnish.log varnishd -F -n "$DIR/varnish" -a "127.0.0.1:$VARNISH_PORT" \
  -f "$DIR/varnish.vcl" -s malloc,256m -p thread_pools="$WORKERS"
CONTENDERS+=("nginx=$NGINX_PORT" "varnish=$VARNISH_PORT")
wait_port "$ORIGIN_PORT"
run_matrix ${SIZES:-1k 100k 1m}
