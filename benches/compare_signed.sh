#!/usr/bin/env bash
# Signed access under load: the same 1 KiB file through three routes of one assetgate (a `dir`
# backend): public, HMAC-signed, CloudFront (RSA-2048, SHA-1) signed. Each signed route is
# measured with one URL repeated and with COUNT (default 10,000) distinct signed URLs, so the
# verified-signature memory is exercised both warm and cold. Unsigned references: the public
# route, unsigned URLs padded to each signed length (request size alone), and COUNT distinct
# padded unsigned URLs (what cycling through many URLs costs wrk, which shares the cores).
# Prints req/s, p50/p99 (median of RUNS runs) and each contender's ratio to the public route.
#
#   benches/compare_signed.sh        # defaults: RUNS=3 DURATION=10s CONNECTIONS=64 COUNT=10000
#
# Needs: wrk, curl, python3 with `cryptography`, openssl (CLI), a release build (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
require_tools wrk python3 curl openssl
COUNT=${COUNT:-10000}
cargo build --release --quiet --bin assetgate
BIN=target/release/assetgate

setup_dir
openssl rand -hex 32 | tr -d '\n' > "$DIR/hmac.key"
openssl genrsa -out "$DIR/cf.pem" 2048 2>/dev/null
openssl rsa -in "$DIR/cf.pem" -pubout -out "$DIR/cf.pub.pem" 2>/dev/null
start_assetgate assetgate "$BIN" benches/peers/assetgate-signed.toml
PORT=$ASSETGATE_PORT
wait_port "$PORT"

mint() { python3 benches/lib/mint_urls.py "$@"; }
echo "/public/1k.bin" > "$DIR/public.txt"
mint hmac "$(cat "$DIR/hmac.key")" 127.0.0.1 /hmac/1k.bin 1 "$DIR/hmac-one.txt"
mint hmac "$(cat "$DIR/hmac.key")" 127.0.0.1 /hmac/1k.bin "$COUNT" "$DIR/hmac-many.txt"
mint cloudfront "$DIR/cf.pem" KBENCH http://bench.test /cf/1k.bin 1 "$DIR/rsa-one.txt"
mint cloudfront "$DIR/cf.pem" KBENCH http://bench.test /cf/1k.bin "$COUNT" "$DIR/rsa-many.txt"

# Unsigned URLs as long as the signed ones (an ignored query parameter): what the longer
# request line alone costs, so the ratios below separate verification from request size.
pad() { python3 -c 'import sys; n=len(open(sys.argv[1]).readline().strip()); p="/public/1k.bin?pad="; print(p + "x" * max(0, n - len(p)))' "$1"; }
pad "$DIR/hmac-one.txt" > "$DIR/public-hmac-length.txt"
pad "$DIR/rsa-one.txt" > "$DIR/public-rsa-length.txt"
# COUNT distinct unsigned URLs of the signed length: what cycling through many URLs costs the
# load generator (wrk's Lua shares the cores), the reference for the *-many rows.
python3 -c 'import sys
n, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(count):
    p = "/public/1k.bin?v=%d&pad=" % i
    print(p + "x" * max(0, n - len(p)))' "$(head -1 "$DIR/rsa-one.txt" | wc -c)" "$COUNT" > "$DIR/public-many.txt"

NAMES=(public public-hmac-length hmac-one public-rsa-length rsa-one public-many hmac-many rsa-many)
for n in "${NAMES[@]}"; do
  first=$(head -1 "$DIR/$n.txt")
  curl -fsS "http://127.0.0.1:$PORT$first" -o /dev/null || { echo "$n: $first refused" >&2; exit 1; }
done

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $WORKERS workers, median of $RUNS runs, $COUNT distinct URLs in *-many"
results="$DIR/results.txt"
for run in $(seq "$RUNS"); do
  order=("${NAMES[@]}")
  if [ $((run % 2)) -eq 0 ]; then order=($(printf '%s\n' "${order[@]}" | tac)); fi
  for n in "${order[@]}"; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/lib/urls.lua \
      "http://127.0.0.1:$PORT" -- "$DIR/$n.txt" > "$DIR/wrk.out"
    python3 benches/lib/wrk_stats.py parse "$DIR/wrk.out" "$n" 1k >> "$results"
  done
done
REF=public python3 benches/lib/wrk_stats.py summary "$results" "${NAMES[@]}"
