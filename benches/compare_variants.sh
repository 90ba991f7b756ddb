#!/usr/bin/env bash
# assetgate's variant pipeline against sharp (libvips), one thread each, on the same inputs:
#   a 4000×3000 JPEG q90 → 640×480 WebP q80 and → 1024×768 JPEG q85, and a 2400×1800 PNG →
#   1024×768 WebP q80. Prints time per variant, variants/s with PARALLEL pipelines at once,
#   output bytes, and the ratios (assetgate / sharp; time ≤ 1.0 and bytes within 10% is the goal).
#
#   benches/compare_variants.sh            # REPEAT=20 PARALLEL=2 RUNS=3
#
# Needs: cargo, python3 with Pillow (makes the inputs), node + npm (sharp from the npm registry,
# installed into benches/peers/sharp/node_modules on first run).
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-20}
PARALLEL=${PARALLEL:-2}
RUNS=${RUNS:-3}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

cargo build --release --quiet
BIN=target/release/assetgate
if [ ! -d benches/peers/sharp/node_modules/sharp ]; then
  npm install --prefix benches/peers/sharp --no-audit --no-fund --loglevel=error
fi
python3 tests/images/imgtool.py make "$DIR/photo.jpg" --size 4000x3000 --photo 1 --quality 90
python3 tests/images/imgtool.py make "$DIR/big.png" --size 2400x1800 --photo 1

# case: name input WxH quality format
CASES=(
  "jpeg4000-to-webp640 photo.jpg 640x480 80 webp"
  "jpeg4000-to-jpeg1024 photo.jpg 1024x768 85 jpeg"
  "png2400-to-webp1024 big.png 1024x768 80 webp"
)

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# PSNR (dB) of assetgate's variant against sharp's: how alike the two pictures are.
psnr() {
  python3 - "$1" "$2" <<'PY'
import math, sys
from PIL import Image, ImageChops, ImageStat
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:3])
mse = sum(v * v for v in ImageStat.Stat(ImageChops.difference(a, b)).rms) / 3
print("inf" if mse == 0 else f"{10 * math.log10(255 * 255 / mse):.1f}")
PY
}

printf '%-22s %12s %12s %7s %10s %10s %7s %9s %9s %7s %6s\n' case ag_ms sharp_ms ratio ag_v/s sharp_v/s ratio ag_bytes sh_bytes ratio psnr
for c in "${CASES[@]}"; do
  read -r name input box q fmt <<<"$c"
  ext=$fmt
  : > "$DIR/ag.t"; : > "$DIR/sh.t"; : > "$DIR/ag.p"; : > "$DIR/sh.p"
  for _ in $(seq "$RUNS"); do
    "$BIN" variant "$DIR/$input" "$box/$q.$ext" --repeat "$REPEAT" -o "$DIR/ag.$ext" > "$DIR/ag.out"
    field ms_per_variant < "$DIR/ag.out" >> "$DIR/ag.t"
    UV_THREADPOOL_SIZE=1 node benches/peers/sharp/sharp_bench.cjs "$DIR/$input" "$box" "$q" "$fmt" "$REPEAT" 1 "$DIR/sh.$ext" > "$DIR/sh.out"
    field ms_per_variant < "$DIR/sh.out" >> "$DIR/sh.t"
    "$BIN" variant "$DIR/$input" "$box/$q.$ext" --repeat "$REPEAT" --parallel "$PARALLEL" > "$DIR/agp.out"
    field variants_per_s < "$DIR/agp.out" >> "$DIR/ag.p"
    UV_THREADPOOL_SIZE=$PARALLEL node benches/peers/sharp/sharp_bench.cjs "$DIR/$input" "$box" "$q" "$fmt" "$REPEAT" "$PARALLEL" > "$DIR/shp.out"
    field variants_per_s < "$DIR/shp.out" >> "$DIR/sh.p"
  done
  ag_ms=$(median < "$DIR/ag.t"); sh_ms=$(median < "$DIR/sh.t")
  ag_vs=$(median < "$DIR/ag.p"); sh_vs=$(median < "$DIR/sh.p")
  ag_b=$(stat -c %s "$DIR/ag.$ext"); sh_b=$(stat -c %s "$DIR/sh.$ext")
  printf '%-22s %12s %12s %7.2f %10s %10s %7.2f %9s %9s %7.2f %6s\n' "$name" "$ag_ms" "$sh_ms" \
    "$(echo "$ag_ms / $sh_ms" | bc -l)" "$ag_vs" "$sh_vs" "$(echo "$ag_vs / $sh_vs" | bc -l)" \
    "$ag_b" "$sh_b" "$(echo "$ag_b / $sh_b" | bc -l)" "$(psnr "$DIR/ag.$ext" "$DIR/sh.$ext")"
done
echo "time: ms per variant on one thread (median of $RUNS runs of $REPEAT); v/s: $PARALLEL pipelines at once;"
echo "psnr: dB between the two variants (over ~35 dB: the same picture to the eye)"
