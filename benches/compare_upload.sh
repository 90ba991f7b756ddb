#!/usr/bin/env bash
# Uploading one large file to an S3 bucket (Garage, on this machine): through assetgate's
# streamed upload (PUT /v1/assets: hashed on the fly, multipart into the bucket, recorded)
# against a direct upload by `aws s3 cp` (awscli, multipart, 10 parts at once). Prints each
# run's throughput, the medians, the ratio, and the gateway's RSS growth during its uploads.
#
#   benches/compare_upload.sh             # SIZE_MIB=1024 RUNS=3
#
# Needs: garage (cargo install garage --version 2.5.0 --locked --no-default-features
# --features bundled-libs,sqlite), aws (pip install awscli), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
command -v garage >/dev/null || { echo "missing garage: cargo install garage --version 2.5.0 --locked --no-default-features --features bundled-libs,sqlite" >&2; exit 1; }
command -v aws >/dev/null || { echo "missing aws: pip install awscli" >&2; exit 1; }
require_tools curl python3
# BIN=path/to/assetgate measures that binary instead of building this checkout.
[ -n "${BIN:-}" ] || { cargo build --release --quiet --bin assetgate; BIN=$PWD/target/release/assetgate; }
SIZE_MIB=${SIZE_MIB:-1024}
source benches/lib/garage.sh

setup_dir
start_garage
start_assetgate assetgate "$BIN" benches/peers/assetgate-upload.toml
GATEWAY_PID=${PIDS[-1]}
ADMIN=$ADMIN_PORT
wait_port "$ASSETGATE_PORT"
export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=garage
S3="aws --endpoint-url http://127.0.0.1:$S3_PORT s3"
for _ in $(seq 100); do $S3 ls s3://assets >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$DIR/big.bin"

rss() { awk '/VmRSS/ {print $2}' "/proc/$GATEWAY_PID/status"; }
# time_of COMMAND...: seconds the command took.
time_of() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }

gateway_upload() {
  local answer id
  answer=$(curl -fsS -T "$DIR/big.bin" -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$ADMIN/v1/assets?owner=bench&module=m&name=big.bin")
  id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$answer")
  # Deleted, so the next run uploads again (the same bytes would be recognised, not sent).
  curl -fsS -X DELETE -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN/v1/assets/$id" >/dev/null
}
aws_upload() { $S3 cp --quiet "$DIR/big.bin" s3://assets/aws/big.bin; $S3 rm --quiet s3://assets/aws/big.bin; }

echo "one ${SIZE_MIB} MiB file into Garage, $RUNS runs each (alternating who goes first)"
base_rss=$(rss) peak_rss=$base_rss
: > "$DIR/times"
for run in $(seq "$RUNS"); do
  order=(gateway aws); [ $((run % 2)) -eq 0 ] && order=(aws gateway)
  for who in "${order[@]}"; do
    if [ "$who" = gateway ]; then
      (while sleep 0.1; do rss; done) > "$DIR/rss.samples" & sampler=$!
      t=$(time_of gateway_upload)
      kill "$sampler"; wait "$sampler" 2>/dev/null || true
      peak=$(sort -n "$DIR/rss.samples" | tail -1)
      [ -n "$peak" ] && [ "$peak" -gt "$peak_rss" ] && peak_rss=$peak
    else
      t=$(time_of aws_upload)
    fi
    echo "$who $t" >> "$DIR/times"
    printf '  run %d %-8s %6.2f s  %7.1f MiB/s\n' "$run" "$who" "$t" "$(echo "$SIZE_MIB / $t" | bc -l)"
  done
done
python3 - "$DIR/times" "$SIZE_MIB" "$base_rss" "$peak_rss" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    who, t = line.split()
    times.setdefault(who, []).append(float(t))
size = float(sys.argv[2])
rate = {w: size / statistics.median(ts) for w, ts in times.items()}
print(f"median: assetgate {rate['gateway']:.1f} MiB/s, aws s3 cp {rate['aws']:.1f} MiB/s, "
      f"ratio {rate['gateway'] / rate['aws']:.2f}x")
print(f"gateway RSS: {int(sys.argv[3]) // 1024} MiB before, {int(sys.argv[4]) // 1024} MiB at most "
      f"(+{(int(sys.argv[4]) - int(sys.argv[3])) // 1024} MiB)")
PY
