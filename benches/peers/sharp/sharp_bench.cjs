// sharp (libvips) making one variant the way benches/compare_variants.sh asks assetgate to:
//   node sharp_bench.cjs FILE WxH Q FORMAT REPEAT PARALLEL [OUT]
// One libvips thread per image (sharp.concurrency(1)); PARALLEL pipelines in flight at once
// (UV_THREADPOOL_SIZE must allow them). Prints the same line as `assetgate variant`.
const sharp = require("sharp");
const fs = require("fs");

const [file, box, q, format, repeat, parallel, out] = process.argv.slice(2);
const [width, height] = box.split("x").map(Number);
const quality = Number(q);
sharp.concurrency(1);
sharp.cache(false);
const input = fs.readFileSync(file);

function once() {
  let p = sharp(input).rotate().resize(width, height, { fit: "cover" });
  if (format === "webp") p = p.webp({ quality });
  else if (format === "jpeg") p = p.jpeg({ quality });
  else if (format === "png") p = p.png();
  else if (format === "avif") p = p.avif({ quality });
  return p.toBuffer();
}

async function loop(n) {
  let last;
  for (let i = 0; i < n; i++) last = await once();
  return last;
}

(async () => {
  const k = Number(parallel);
  const started = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: k }, () => loop(Number(repeat))));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const count = Number(repeat) * k;
  const bytes = results[0].length;
  console.log(
    `ms_per_variant=${((elapsed * 1000 * k) / count).toFixed(2)} variants_per_s=${(count / elapsed).toFixed(2)} bytes=${bytes}`
  );
  if (out) fs.writeFileSync(out, results[0]);
})();
