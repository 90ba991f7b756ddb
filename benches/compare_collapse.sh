#!/usr/bin/env bash
# Request collapsing on a cold key: 200 concurrent GETs for one uncached path, all started
# before the origin (delayed 500 ms) can answer, against assetgate (pingora-cache's lock),
# two assetgates sharing one Redis (the fleet lock; the 200 split between them), nginx
# (proxy_cache_lock on) and Varnish. Prints the origin requests each caused and the slowest
# and median client latency; RUNS cold keys each (a new path per run).
#
#   benches/compare_collapse.sh           # RUNS=3 N=200 DELAY_MS=500
#
# Needs: nginx, varnishd, redis-server, python3 (apt-get install nginx-light varnish redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
require_tools nginx varnishd redis-server python3
cargo build --release --quiet --bin assetgate
BIN=target/release/assetgate
N=${N:-200}
DELAY_MS=${DELAY_MS:-500}

setup_dir
export ORIGIN_PORT=$(port) NGINX_PORT=$(port) VARNISH_PORT=$(port) REDIS_PORT=$(port)
render benches/peers/nginx-cache.conf "$DIR/nginx-cache.conf"
render benches/peers/varnish.vcl "$DIR/varnish.vcl"
mkdir -p "$DIR/nginx-cache"
chmod a+rwx "$DIR/nginx-cache" "$DIR/tmp"
start_bg origin.log python3 benches/lib/slow_origin.py "$ORIGIN_PORT" "$DELAY_MS"
start_bg redis.log redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "$DIR/redis.out"
export TIERS='["memory"]'; start_assetgate assetgate "$BIN" benches/peers/assetgate-cache.toml
export TIERS='["memory", "redis"]'
start_assetgate fleet-a "$BIN" benches/peers/assetgate-cache.toml
FLEET_A=$ASSETGATE_PORT
# The second gateway shares the first one's Redis keys.
export ASSETGATE_PORT=$(port) ADMIN_PORT=$(port) INSTANCE=fleet-a
render benches/peers/assetgate-cache.toml "$DIR/fleet-b.toml"
sed -i "s|fleet-a.pid|fleet-b.pid|; s|fleet-a.sock|fleet-b.sock|; s|fleet-a-disk|fleet-b-disk|" "$DIR/fleet-b.toml"
start_bg fleet-b.log "$BIN" run -c "$DIR/fleet-b.toml"
FLEET_B=$ASSETGATE_PORT
start_bg nginx-cache.log nginx -c "$DIR/nginx-cache.conf" -p "$DIR"
start_bg varnish.log varnishd -F -n "$DIR/varnish" -a "127.0.0.1:$VARNISH_PORT" \
  -f "$DIR/varnish.vcl" -s malloc,256m -p thread_pools="$WORKERS"
for p in "$ORIGIN_PORT" "$FLEET_A" "$FLEET_B" "$NGINX_PORT" "$VARNISH_PORT"; do wait_port "$p"; done
sleep 1
echo "$N concurrent GETs of one cold key, origin delayed ${DELAY_MS} ms"
for run in $(seq "${RUNS:-3}"); do
  for c in "${CONTENDERS[@]}" "nginx=$NGINX_PORT" "varnish=$VARNISH_PORT"; do
    name=${c%%=*} p=${c##*=}
    [ "$name" = fleet-a ] && continue
    python3 benches/lib/burst.py "$name" "$p" "/cold-$name-$run.bin" "$N" "$ORIGIN_PORT"
  done
  # The fleet: half the requests to each gateway, at once.
  python3 - "$FLEET_A" "$FLEET_B" "/cold-fleet-$run.bin" "$N" "$ORIGIN_PORT" <<'PY'
import subprocess, sys
a, b, path, n, origin = sys.argv[1:]
half = int(n) // 2
procs = [subprocess.Popen([sys.executable, "benches/lib/burst.py", name, port, path, str(half), origin],
                          stdout=subprocess.PIPE, text=True)
         for name, port in (("fleet (A half)", a), ("fleet (B half)", b))]
for p in procs:
    print(p.communicate()[0].rstrip())
PY
done
