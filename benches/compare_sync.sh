#!/usr/bin/env bash
# Syncing a build folder to a bucket (Garage, on this machine): `assetgate assets sync` through
# the gateway (into the asset store: hashed, recorded) against `rclone sync --checksum`
# (Debian's rclone, straight to the bucket). A first full sync of FILES small files, then a
# sync after CHANGED_PERCENT of them changed. Prints each time and the ratios.
#
#   benches/compare_sync.sh               # FILES=10000 CHANGED_PERCENT=1
#
# Needs: garage (cargo install garage --version 2.5.0 --locked --no-default-features
# --features bundled-libs,sqlite), rclone (apt-get install rclone), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib/common.sh
command -v garage >/dev/null || { echo "missing garage: cargo install garage --version 2.5.0 --locked --no-default-features --features bundled-libs,sqlite" >&2; exit 1; }
require_tools rclone curl python3
# BIN=path/to/assetgate measures that binary instead of building this checkout.
[ -n "${BIN:-}" ] || { cargo build --release --quiet --bin assetgate; BIN=$PWD/target/release/assetgate; }
FILES=${FILES:-10000}
CHANGED_PERCENT=${CHANGED_PERCENT:-1}
source benches/lib/garage.sh

setup_dir
start_garage
start_assetgate assetgate "$BIN" benches/peers/assetgate-upload.toml
wait_port "$ASSETGATE_PORT" || { cat "$DIR/assetgate.log"; exit 1; }
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
# Loopback over plain HTTP: a CA bundle set for the shell (AWS_CA_BUNDLE) does not apply and
# breaks rclone's S3 client.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_GARAGE_TYPE=s3 RCLONE_CONFIG_GARAGE_PROVIDER=Other \
  RCLONE_CONFIG_GARAGE_ENDPOINT="http://127.0.0.1:$S3_PORT" RCLONE_CONFIG_GARAGE_REGION=garage \
  RCLONE_CONFIG_GARAGE_ACCESS_KEY_ID=$KEY_ID RCLONE_CONFIG_GARAGE_SECRET_ACCESS_KEY=$SECRET \
  RCLONE_CONFIG_GARAGE_FORCE_PATH_STYLE=true

python3 - "$DIR/site" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
for i in range(n):
    d = os.path.join(root, f"assets/{i % 50:02d}/{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 8192)))
PY
time_of() { local t0 t1; t0=$(date +%s.%N); "$@" >"$DIR/last.out" 2>&1 || { cat "$DIR/last.out" >&2; exit 1; }; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
gateway_sync() { "$BIN" assets sync "$DIR/site" -c "$DIR/assetgate.toml" --owner ci --module site --state "$DIR/ag.state"; }
rclone_sync() { rclone sync --checksum "$DIR/site" garage:assets/rclone; }

echo "$FILES files of 1-8 KiB, then ${CHANGED_PERCENT}% changed"
full_gw=$(time_of gateway_sync); full_rc=$(time_of rclone_sync)
python3 - "$DIR/site" "$FILES" "$CHANGED_PERCENT" <<'PY'
import os, random, sys
root, n, pct = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rnd = random.Random(2)
for i in rnd.sample(range(n), int(n * pct / 100)):
    path = os.path.join(root, f"assets/{i % 50:02d}/{i % 7}/f{i:05d}.bin")
    with open(path, "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 8192)))
PY
delta_rc=$(time_of rclone_sync); delta_gw=$(time_of gateway_sync)
objects=$(rclone size garage:assets/rclone --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
printf '  full sync:    assetgate %6.2f s   rclone %6.2f s   ratio %.2fx\n' "$full_gw" "$full_rc" "$(echo "$full_gw / $full_rc" | bc -l)"
printf '  %s%% changed:  assetgate %6.2f s   rclone %6.2f s   ratio %.2fx\n' "$CHANGED_PERCENT" "$delta_gw" "$delta_rc" "$(echo "$delta_gw / $delta_rc" | bc -l)"
echo "  (ratio = assetgate time / rclone time; rclone left $objects objects)"
