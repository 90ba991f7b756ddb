#!/usr/bin/env bash
# Pass-through proxy throughput: assetgate vs nginx (proxy_pass, no cache) in front of the same
# nginx origin, same wrk load, for 1 KiB and 100 KiB objects. Prints req/s and p50/p99 latency
# (median of RUNS runs each) and the ratio assetgate/nginx. A bare Pingora proxy
# (examples/bare_pingora.rs: no gateway logic at all) runs beside them as the floor, so gateway
# overhead and Pingora overhead can be told apart.
#
#   benches/compare_nginx.sh            # defaults: RUNS=3 DURATION=10s CONNECTIONS=64 THREADS=2
#   RUNS=5 DURATION=20s benches/compare_nginx.sh
#
# Needs: nginx, wrk (apt-get install nginx-light wrk), a release build (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
for tool in nginx wrk python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx-light wrk python3" >&2; exit 1; }
done
cargo build --release --quiet --bin assetgate --example bare_pingora
BIN=target/release/assetgate
BARE=target/release/examples/bare_pingora

DIR=$(mktemp -d /tmp/assetgate-bench.XXXXXX)
mkdir -p "$DIR/files" "$DIR/tmp"
head -c 1024 /dev/urandom > "$DIR/files/1k.bin"
head -c 102400 /dev/urandom > "$DIR/files/100k.bin"
chmod -R a+rX "$DIR"   # nginx workers run as an unprivileged user
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN_PORT=$(port); NGINX_PORT=$(port); ASSETGATE_PORT=$(port); ADMIN_PORT=$(port); BARE_PORT=$(port)
render() {
  sed -e "s#__DIR__#$DIR#g" -e "s#__ORIGIN_PORT__#$ORIGIN_PORT#g" -e "s#__NGINX_PORT__#$NGINX_PORT#g" \
      -e "s#__ASSETGATE_PORT__#$ASSETGATE_PORT#g" -e "s#__ADMIN_PORT__#$ADMIN_PORT#g" \
      -e "s#__WORKERS__#$WORKERS#g" "$1" > "$2"
}
render benches/peers/nginx-origin.conf "$DIR/origin.conf"
render benches/peers/nginx-proxy.conf "$DIR/proxy.conf"
render benches/peers/assetgate-proxy.toml "$DIR/assetgate.toml"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
nginx -c "$DIR/origin.conf" -p "$DIR" & pids+=($!)
nginx -c "$DIR/proxy.conf" -p "$DIR" & pids+=($!)
"$BIN" run -c "$DIR/assetgate.toml" 2>"$DIR/assetgate.log" & pids+=($!)
"$BARE" "127.0.0.1:$BARE_PORT" "127.0.0.1:$ORIGIN_PORT" "$WORKERS" 2>"$DIR/bare.log" & pids+=($!)
for p in $ORIGIN_PORT $NGINX_PORT $ASSETGATE_PORT $BARE_PORT; do
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
curl -fsS "http://127.0.0.1:$ASSETGATE_PORT/1k.bin" -o /dev/null
curl -fsS "http://127.0.0.1:$NGINX_PORT/1k.bin" -o /dev/null

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $WORKERS workers each, median of $RUNS runs"
RESULTS="$DIR/results.txt"
for size in 1k 100k; do
  for run in $(seq "$RUNS"); do
    # Alternate who goes first so neither always runs on a warmer machine.
    if [ $((run % 2)) -eq 1 ]; then order="assetgate nginx pingora"; else order="pingora nginx assetgate"; fi
    for who in $order; do
      case $who in assetgate) p=$ASSETGATE_PORT ;; nginx) p=$NGINX_PORT ;; pingora) p=$BARE_PORT ;; esac
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$p/$size.bin" > "$DIR/wrk.out"
      python3 - "$DIR/wrk.out" "$who" "$size" >> "$RESULTS" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(sys.argv[2], sys.argv[3], rps, p50, p99, errors.group(1) if errors else 0)
PY
    done
  done
done
python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for who, size, rps, p50, p99, errors in rows:
    if int(errors):
        print(f"WARNING: {who} {size}: {errors} non-2xx responses")
    med.setdefault((who, size), []).append((float(rps), float(p50), float(p99)))
print(f"{'size':>6} {'proxy':>10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
for size in ("1k", "100k"):
    out = {}
    for who in ("assetgate", "nginx", "pingora"):
        runs = med[(who, size)]
        out[who] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
        rps, p50, p99 = out[who]
        print(f"{size:>6} {who:>10} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f}")
    a, n, b = out["assetgate"], out["nginx"], out["pingora"]
    print(f"{size:>6} {'ag/nginx':>10} {a[0]/n[0]:>10.2f} {a[1]/n[1]:>8.2f} {a[2]/n[2]:>8.2f}   (req/s: higher is better; latency: lower)")
    print(f"{size:>6} {'ag/pingora':>10} {a[0]/b[0]:>10.2f} {a[1]/b[1]:>8.2f} {a[2]/b[2]:>8.2f}   (gateway overhead over bare Pingora)")
PY
