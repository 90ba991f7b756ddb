//! Image variants end to end: the gateway binary with its asset store (SQLite and a
//! PostgreSQL cluster of the harness's own), originals in a directory or in Garage, outputs
//! checked with an independent decoder (Pillow) and colour reference (LittleCMS).

use crate::harness::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HMAC_KEY: &str = "0123456789abcdef0123456789abcdef";

/// Runs the Pillow helper; panics (naming the package) when Pillow is missing.
fn imgtool(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/imgtool.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 is required (apt-get install python3)");
    assert!(
        out.status.success(),
        "imgtool {args:?} failed (needs Pillow: pip install pillow; .ci/run does this): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pillow's reading of `bytes`.
fn info(bytes: &[u8]) -> serde_json::Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    serde_json::from_str(&imgtool(&["info", &file.path().to_string_lossy()])).unwrap()
}

fn hash_of(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The originals a test registers at start, made once per test.
struct Originals {
    dir: tempfile::TempDir,
}

impl Originals {
    fn new() -> Originals {
        Originals {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes `name` with imgtool's `make` options; returns its content hash.
    fn make(&self, name: &str, opts: &[&str]) -> String {
        let path = self.path(name);
        let mut args = vec!["make", path.to_str().unwrap()];
        args.extend_from_slice(opts);
        imgtool(&args);
        hash_of(&path)
    }

    /// Writes raw bytes as `name`; returns their hash.
    fn raw(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        hash_of(&self.path(name))
    }
}

/// A gateway serving `/v/{hash}/...` from a variants backend, originals in `originals_toml`
/// (a backend named `originals`), the store at `database`, `register` folder added at start.
fn gateway(originals_toml: &str, database: &str, register: &Path, extra: &str) -> Gateway {
    Gateway::start(&variants_config(originals_toml, database, register, extra))
}

fn variants_config(originals_toml: &str, database: &str, register: &Path, extra: &str) -> String {
    format!(
        r#"
[cache.memory]
size = "64MiB"

[[auth.hmac.keys]]
id = "k1"
secret = {{ file = "{key}" }}

[assets]
database = "{database}"
originals = "originals"
{extra}
[assets.register]
paths = ["{register}"]

{originals_toml}

[backends.variants]
kind = "variants"

[[hosts]]
names = ["*"]

[[hosts.routes]]
name = "variants"
path = "/v"
strip_prefix = "/v"
backend = "variants"
access = "hmac"
max_token_lifetime = "1h"
cache = {{}}
"#,
        key = secret_file(HMAC_KEY).display(),
        register = register.display(),
    )
}

/// A gateway on [`gateway`] with originals in a directory and SQLite, both in `store`.
fn local_gateway(o: &Originals, store: &tempfile::TempDir, extra: &str) -> Gateway {
    gateway(
        &dir_originals(store.path()),
        &sqlite_in(store.path()),
        o.dir.path(),
        extra,
    )
}

/// The value of the metric line starting with `name` (0 when absent).
fn series(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The body of a GET that must succeed.
async fn fetched(url: &str) -> bytes::Bytes {
    let r = get(url, &[]).await;
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap()
}

fn dir_originals(root: &Path) -> String {
    format!(
        "[backends.originals]\nkind = \"dir\"\nroot = \"{}\"\n",
        root.display()
    )
}

fn sqlite_in(dir: &Path) -> String {
    format!("sqlite://{}/state/assets.db", dir.display())
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn variants_have_the_asked_size_format_and_quality() {
    let o = Originals::new();
    let photo = o.make(
        "photo.jpg",
        &["--size", "1600x1200", "--photo", "1", "--quality", "90"],
    );
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");

    let webp = get(&gw.url(&format!("/v/{photo}/640x480/80.webp")), &[]).await;
    assert_eq!(webp.status(), 200);
    let h = webp.headers().clone();
    assert_eq!(h["content-type"], "image/webp");
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let body = webp.bytes().await.unwrap();
    let i = info(&body);
    assert_eq!(
        (
            i["format"].as_str(),
            i["width"].as_u64(),
            i["height"].as_u64()
        ),
        (Some("WEBP"), Some(640), Some(480))
    );

    // The ETag revalidates without a body.
    let again = get(
        &gw.url(&format!("/v/{photo}/640x480/80.webp")),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status(), 304);

    // Quality takes effect; JPEG, PNG and AVIF come out as asked.
    let low = get(&gw.url(&format!("/v/{photo}/1024x768/50.jpeg")), &[]).await;
    let high = get(&gw.url(&format!("/v/{photo}/1024x768/85.jpg")), &[]).await;
    assert_eq!(low.headers()["content-type"], "image/jpeg");
    let (low, high) = (low.bytes().await.unwrap(), high.bytes().await.unwrap());
    assert!(
        high.len() > low.len() * 5 / 4,
        "q85 {} vs q50 {}",
        high.len(),
        low.len()
    );
    assert_eq!(info(&high)["format"], "JPEG");
    assert_eq!(info(&high)["width"], 1024);
    let png = fetched(&gw.url(&format!("/v/{photo}/320x240/80.png"))).await;
    assert_eq!(
        (info(&png)["format"].as_str(), info(&png)["height"].as_u64()),
        (Some("PNG"), Some(240))
    );
    let avif = get(&gw.url(&format!("/v/{photo}/320x240/60.avif")), &[]).await;
    assert_eq!(avif.headers()["content-type"], "image/avif");
    let avif = avif.bytes().await.unwrap();
    assert_eq!(
        (
            info(&avif)["format"].as_str(),
            info(&avif)["width"].as_u64()
        ),
        (Some("AVIF"), Some(320))
    );

    // Fit modes: inside keeps the 4:3 aspect in a 16:9 box; contain pads to the box.
    let inside = fetched(&gw.url(&format!("/v/{photo}/1920x1080-inside/80.webp"))).await;
    assert_eq!(
        (
            info(&inside)["width"].as_u64(),
            info(&inside)["height"].as_u64()
        ),
        (Some(1440), Some(1080))
    );
    let contain = fetched(&gw.url(&format!("/v/{photo}/1920x1080-contain/80.png"))).await;
    assert_eq!(
        (
            info(&contain)["width"].as_u64(),
            info(&contain)["mode"].as_str()
        ),
        (Some(1920), Some("RGBA"))
    );

    // The second request for a variant is a cache hit.
    let hit = get(&gw.url(&format!("/v/{photo}/640x480/80.webp")), &[]).await;
    assert!(
        hit.headers()["cache-status"]
            .to_str()
            .unwrap()
            .contains("hit"),
        "{:?}",
        hit.headers()
    );
}

#[tokio::test]
async fn auto_negotiates_and_keys_the_chosen_format() {
    let o = Originals::new();
    let photo = o.make("photo.png", &["--size", "800x600", "--photo", "1"]);
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");
    let url = gw.url(&format!("/v/{photo}/640x480/80.auto"));
    let webp = get(&url, &[("accept", "image/avif;q=0,image/webp,*/*;q=0.8")]).await;
    assert_eq!(webp.headers()["content-type"], "image/webp");
    assert_eq!(webp.headers()["vary"], "Accept");
    // reqwest also sends `Accept: */*`: WebP is refused explicitly.
    let jpeg = get(&url, &[("accept", "image/jpeg, image/webp;q=0")]).await;
    assert_eq!(jpeg.headers()["content-type"], "image/jpeg");
    // Another Accept string that chooses WebP is the same cache entry (not keyed by the header).
    let other = get(&url, &[("accept", "image/webp")]).await;
    assert_eq!(other.headers()["content-type"], "image/webp");
    assert!(
        other.headers()["cache-status"]
            .to_str()
            .unwrap()
            .contains("hit"),
        "{:?}",
        other.headers()
    );
    // No Accept at all (reqwest always sends one): JPEG, which every client decodes.
    let path = format!("/v/{photo}/640x480/80.auto");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let addr = gw.addr;
    let none = tokio::task::spawn_blocking(move || raw_request(addr, request.as_bytes()))
        .await
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        none.contains("content-type: image/jpeg"),
        "{}",
        &none[..none.len().min(400)]
    );
}

#[tokio::test]
async fn exif_rotated_input_comes_out_upright() {
    let o = Originals::new();
    // Stored 400×300, left half red, right half blue; orientation 6 shows it turned 90°
    // clockwise: 300×400 with red on top.
    let rotated = o.make(
        "rotated.jpg",
        &[
            "--size",
            "400x300",
            "--halves",
            "255,0,0:0,0,255",
            "--orientation",
            "6",
            "--quality",
            "95",
        ],
    );
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");
    let body = fetched(&gw.url(&format!("/v/{rotated}/640x480-inside/85.png"))).await;
    let i = info(&body);
    assert_eq!(
        (i["width"].as_u64(), i["height"].as_u64()),
        (Some(360), Some(480)),
        "{i}"
    );
    let (top, bottom) = (&i["top"], &i["bottom"]);
    assert!(
        top[0].as_u64().unwrap() > 200 && top[2].as_u64().unwrap() < 60,
        "top {top}"
    );
    assert!(
        bottom[2].as_u64().unwrap() > 200 && bottom[0].as_u64().unwrap() < 60,
        "bottom {bottom}"
    );
}

/// CIE L*a*b* of an sRGB colour (D65).
fn lab(rgb: &serde_json::Value) -> [f64; 3] {
    let lin = |v: &serde_json::Value| {
        let c = v.as_f64().unwrap() / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(&rgb[0]), lin(&rgb[1]), lin(&rgb[2]));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    [
        116.0 * f(y) - 16.0,
        500.0 * (f(x) - f(y)),
        200.0 * (f(y) - f(z)),
    ]
}

#[tokio::test]
async fn wide_gamut_input_is_converted_to_srgb() {
    let o = Originals::new();
    let icc = o.path("p3.icc");
    std::fs::write(
        &icc,
        moxcms::ColorProfile::new_display_p3().encode().unwrap(),
    )
    .unwrap();
    let p3 = o.make(
        "p3.png",
        &[
            "--size",
            "640x480",
            "--color",
            "210,60,40",
            "--icc",
            icc.to_str().unwrap(),
        ],
    );
    std::fs::remove_file(&icc).unwrap();
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");
    let body = fetched(&gw.url(&format!("/v/{p3}/320x240/85.png"))).await;
    let got = info(&body);
    assert_eq!(got["icc"], false, "the variant is plain sRGB");
    let reference: serde_json::Value =
        serde_json::from_str(&imgtool(&["srgb", o.path("p3.png").to_str().unwrap()])).unwrap();
    let (a, b) = (lab(&got["center"]), lab(&reference["center"]));
    let delta_e = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
    assert!(
        delta_e < 2.0,
        "ΔE {delta_e:.2}: got {} reference {}",
        got["center"],
        reference["center"]
    );
    // Unconverted, P3's numbers read as sRGB would be far off.
    let raw = lab(&serde_json::json!([210, 60, 40]));
    let off = ((raw[0] - b[0]).powi(2) + (raw[1] - b[1]).powi(2) + (raw[2] - b[2]).powi(2)).sqrt();
    assert!(
        off > 5.0,
        "the reference must differ from the raw numbers ({off:.2})"
    );
}

#[tokio::test]
async fn bad_urls_and_bad_originals_get_clear_answers() {
    let o = Originals::new();
    let photo = o.make("photo.jpg", &["--size", "800x600", "--photo", "1"]);
    // A PNG header declaring 50000×50000, then nothing: a bomb that must never be decoded.
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bomb.extend_from_slice(&50_000u32.to_be_bytes());
    bomb.extend_from_slice(&50_000u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32fast::hash(&bomb[12..]);
    bomb.extend_from_slice(&crc.to_be_bytes());
    let bomb = o.raw("bomb.png", &bomb);
    let full = std::fs::read(o.path("photo.jpg")).unwrap();
    let truncated = o.raw("truncated.jpg", &full[..full.len() / 2]);
    let garbage = o.raw("garbage.jpg", b"this is not an image at all, just text");
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");

    let not_allowed = get(&gw.url(&format!("/v/{photo}/641x480/80.webp")), &[]).await;
    assert_eq!(not_allowed.status(), 400);
    assert_eq!(
        not_allowed.text().await.unwrap().trim(),
        "width 641 is not allowed; allowed widths: 320, 640, 1024, 1920"
    );
    let q = get(&gw.url(&format!("/v/{photo}/640x480/81.webp")), &[]).await;
    assert_eq!(q.status(), 400);
    assert!(q
        .text()
        .await
        .unwrap()
        .contains("allowed qualities: 50, 60, 70, 75, 80, 85"));
    assert_eq!(
        get(&gw.url(&format!("/v/{photo}/640x480/80.tiff")), &[])
            .await
            .status(),
        400
    );
    assert_eq!(
        get(&gw.url("/v/abc/640x480/80.webp"), &[]).await.status(),
        400
    );
    let unknown = "0".repeat(64);
    assert_eq!(
        get(&gw.url(&format!("/v/{unknown}/640x480/80.webp")), &[])
            .await
            .status(),
        404
    );

    let rss_before = rss_kib(gw.pid());
    let refused = get(&gw.url(&format!("/v/{bomb}/640x480/80.webp")), &[]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("50000x50000"));
    let grown = rss_kib(gw.pid()).saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB on a bomb");
    for hash in [&truncated, &garbage] {
        let r = get(&gw.url(&format!("/v/{hash}/640x480/80.webp")), &[]).await;
        assert_eq!(r.status(), 422, "{hash}");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    // Nothing bad was stored: asking again is refused again, not served from a tier.
    assert_eq!(
        get(&gw.url(&format!("/v/{truncated}/640x480/80.webp")), &[])
            .await
            .status(),
        422
    );
    let m = gw.metrics().await;
    assert!(
        m.contains("assetgate_variant_rejections_total{reason=\"source_too_large\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("assetgate_variant_rejections_total{reason=\"undecodable\"} 3"),
        "{m}"
    );
}

/// Runs `assetgate assets add` against the gateway's config.
fn assets_add(gw: &Gateway, file: &Path, owner: &str, visibility: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assetgate"))
        .args(["assets", "add", "-c"])
        .arg(gw.dir.path().join("assetgate.toml"))
        .arg(file)
        .args([
            "--owner",
            owner,
            "--module",
            "avatars",
            "--visibility",
            visibility,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "assets add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Identical bytes by two owners, a private original with and without a credential, on
/// `database` with originals in `originals_toml`; returns the private hash.
async fn owners_and_privacy(gw: &Gateway, o: &Originals) -> String {
    let private = o.path("private/alice.jpg");
    std::fs::create_dir_all(private.parent().unwrap()).unwrap();
    imgtool(&[
        "make",
        private.to_str().unwrap(),
        "--size",
        "700x500",
        "--photo",
        "1",
    ]);
    let hash = hash_of(&private);
    let first = assets_add(gw, &private, "alice", "private");
    assert!(first.starts_with(&hash), "{first}");
    // The same bytes again, and by bob: one blob, three adds, two assets.
    assets_add(gw, &private, "alice", "private");
    assets_add(gw, &private, "bob", "private");

    let url = format!("/v/{hash}/640x480/80.webp");
    let anonymous = get(&gw.url(&url), &[]).await;
    assert_eq!(anonymous.status(), 401);
    let alice = gw.signed("hmac", &["--user", "alice", "--ttl", "10m", &gw.url(&url)]);
    let served = get(&alice, &[]).await;
    assert_eq!(served.status(), 200);
    let cc = served.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_string();
    let max_age: u64 = cc
        .strip_prefix("private, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age <= 600 && max_age > 500, "{cc}");
    let carol = gw.signed("hmac", &["--user", "carol", "--ttl", "10m", &gw.url(&url)]);
    assert_eq!(get(&carol, &[]).await.status(), 403);
    // Bob owns the same bytes: served to him too, from the tier now.
    let bob = gw.signed("hmac", &["--user", "bob", "--ttl", "10m", &gw.url(&url)]);
    assert_eq!(get(&bob, &[]).await.status(), 200);
    hash
}

#[tokio::test]
async fn sqlite_store_shares_blobs_and_guards_private_originals() {
    let o = Originals::new();
    o.make("public.png", &["--size", "64x48", "--color", "1,2,3"]);
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");
    let hash = owners_and_privacy(&gw, &o).await;
    let db = store.path().join("state/assets.db");
    let counts = Command::new("python3")
        .args(["-c", &format!(
            "import sqlite3; c = sqlite3.connect('{}'); \
             print(c.execute(\"select count(*) from blobs where content_hash='{hash}'\").fetchone()[0], \
                   c.execute(\"select count(*) from assets where blob_hash='{hash}'\").fetchone()[0])",
            db.display()
        )])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&counts.stdout).trim(), "1 2");
    // The bytes are stored once, under the content-addressed key at the backend's root (no
    // `originals/` folder inside the originals backend).
    let key = store
        .path()
        .join(format!("{}/{}/{hash}", &hash[..2], &hash[2..4]));
    assert!(key.is_file(), "{}", key.display());
    assert!(!store.path().join("originals").exists());
}

#[tokio::test]
async fn a_private_placement_gives_each_owner_their_own_object_in_its_backend() {
    let o = Originals::new();
    o.make("public.png", &["--size", "64x48", "--color", "1,2,3"]);
    let store = tempfile::tempdir().unwrap();
    let private_root = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[assets.placements]]\nvisibility = \"private\"\nbackend = \"private\"\n\
         key = \"private/{{user}}/{{module}}/{{hash}}.{{ext}}\"\n\
         [backends.private]\nkind = \"dir\"\nroot = \"{}\"\n",
        private_root.path().display()
    );
    let gw = local_gateway(&o, &store, &extra);
    // Served to its owners only, read from the private backend.
    let hash = owners_and_privacy(&gw, &o).await;
    let mut placed: Vec<String> = Vec::new();
    for owner in ["alice", "bob"] {
        let key = format!("private/{owner}/avatars/{hash}.jpg");
        assert!(private_root.path().join(&key).is_file(), "{key}");
        placed.push(key);
    }
    // Nothing of it in the default backend; the public sample is there, content-addressed.
    let default_copy = store
        .path()
        .join(format!("{}/{}/{hash}", &hash[..2], &hash[2..4]));
    assert!(!default_copy.exists());
    let rows = Command::new("python3")
        .args(["-c", &format!(
            "import sqlite3; c = sqlite3.connect('{}'); \
             print(sorted(r[0] + ':' + r[1] for r in c.execute(\"select backend, storage_key from objects where blob_hash='{hash}'\")))",
            store.path().join("state/assets.db").display()
        )])
        .output()
        .unwrap();
    let expected = format!("['private:{}', 'private:{}']", placed[0], placed[1]);
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), expected);
}

#[tokio::test]
async fn postgres_store_with_originals_in_garage() {
    let garage = garage().await;
    let pg = postgres();
    let database = pg.database(&format!("variants_{}", std::process::id()));
    let o = Originals::new();
    let public = o.make("public.jpg", &["--size", "1200x900", "--photo", "1"]);
    let gw = gateway(
        &garage.backend_toml("originals", "variant-test", GARAGE_SECRET),
        &database,
        o.dir.path(),
        "",
    );
    let r = get(&gw.url(&format!("/v/{public}/1024x768/85.jpeg")), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(info(&r.bytes().await.unwrap())["width"], 1024);
    // Registered at start into Garage under the content-addressed key.
    let key = format!("variant-test/{}/{}/{public}", &public[..2], &public[2..4]);
    garage
        .client()
        .head_object()
        .bucket(GARAGE_BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    let hash = owners_and_privacy(&gw, &o).await;
    let db = database.rsplit('/').next().unwrap();
    assert_eq!(
        pg.psql(
            db,
            &format!("select count(*) from blobs where content_hash = '{hash}'")
        )
        .trim(),
        "1"
    );
    assert_eq!(
        pg.psql(
            db,
            &format!("select count(*) from assets where blob_hash = '{hash}'")
        )
        .trim(),
        "2"
    );
}

#[tokio::test]
async fn a_cold_variant_is_computed_once_across_two_gateways() {
    let garage = garage().await;
    // Originals in Garage behind a relay that delays each new connection: the one fetch of
    // the original takes 1.5 s, so all 200 requests are in flight before the first compute
    // can finish.
    let endpoint: std::net::SocketAddr = garage
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let relay = Relay::start(endpoint);
    let o = Originals::new();
    let big = o.make(
        "big.jpg",
        &["--size", "3000x2000", "--photo", "1", "--quality", "92"],
    );
    let store = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let originals = garage
        .backend_toml("originals", "collapse-test", GARAGE_SECRET)
        .replace(
            &garage.endpoint,
            &format!("http://127.0.0.1:{}", relay.port),
        );
    let tiers = format!(
        "[cache.redis]\nurl = \"{}\"\nkey_prefix = \"v:\"\n",
        redis.url()
    );
    let start = || {
        gateway(
            &format!("{originals}\n{tiers}"),
            &sqlite_in(store.path()),
            o.dir.path(),
            "",
        )
    };
    let a = start();
    let b = start();
    relay.set_delay(Duration::from_millis(1500));
    let url = format!("/v/{big}/1920x1080/75.webp");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let target = if i % 2 == 0 { a.url(&url) } else { b.url(&url) };
        tasks.push(tokio::spawn(async move {
            let r = client().get(target).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().len())
        }));
    }
    let mut sizes = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, len) = t.await.unwrap();
        assert_eq!(status, 200);
        sizes.insert(len);
    }
    assert_eq!(
        sizes.len(),
        1,
        "every answer is the same variant: {sizes:?}"
    );
    let count = series;
    let (ma, mb) = (a.metrics().await, b.metrics().await);
    let computed = "assetgate_variant_compute_seconds_count{format=\"webp\"}";
    let total = count(&ma, computed) + count(&mb, computed);
    assert_eq!(total, 1, "computed {total} times");
    let fetched = "assetgate_variant_shared_total{outcome=\"done\",step=\"fetch\"}";
    assert_eq!(
        count(&ma, fetched) + count(&mb, fetched),
        1,
        "fetched more than once"
    );
}

#[tokio::test]
async fn a_saturated_pool_answers_503_with_retry_after() {
    let o = Originals::new();
    let big = o.make("big.jpg", &["--size", "2400x1800", "--photo", "1"]);
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "workers = 1\nqueue = 0\n");
    // Distinct variants (no collapsing): one runs, the rest find no worker and no queue.
    let mut tasks = Vec::new();
    for (w, h) in [
        (1920, 1080),
        (1024, 768),
        (640, 480),
        (320, 240),
        (1920, 768),
        (1024, 1080),
    ] {
        let url = gw.url(&format!("/v/{big}/{w}x{h}-inside/85.png"));
        tasks.push(tokio::spawn(async move {
            let r = client().get(url).send().await.unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").cloned())
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut busy = 0;
    for t in tasks {
        let (status, retry) = t.await.unwrap();
        if status == 503 {
            busy += 1;
            assert!(retry.is_some(), "503 without Retry-After");
        } else {
            assert_eq!(status, 200);
        }
    }
    assert!(
        busy >= 1,
        "one worker and no queue must refuse some of 6 concurrent computes"
    );
    assert!(gw
        .metrics()
        .await
        .contains("assetgate_variant_rejections_total{reason=\"busy\"}"));
}

#[tokio::test]
async fn readiness_waits_for_the_asset_store() {
    let pg = postgres();
    let database = pg.database(&format!("ready_{}", std::process::id()));
    // The database behind a relay that refuses connections until the test restores it.
    let relay = Relay::start(std::net::SocketAddr::from(([127, 0, 0, 1], pg.port)));
    relay.cut();
    let url = database.replace(&format!(":{}/", pg.port), &format!(":{}/", relay.port));
    let o = Originals::new();
    let photo = o.make("photo.jpg", &["--size", "800x600", "--photo", "1"]);
    let store = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start_unready(&variants_config(
        &dir_originals(store.path()),
        &url,
        o.dir.path(),
        "",
    ));
    let readyz = |gw: &Gateway| blocking_get(gw.admin, "/readyz").unwrap_or_default();
    let not_ready = eventually(
        "the admin listener answers",
        Duration::from_secs(20),
        || {
            let body = readyz(&gw);
            async move { body.starts_with("HTTP/1.1 503").then_some(body) }
        },
    )
    .await;
    assert!(
        not_ready.contains("asset store not connected yet"),
        "{not_ready}"
    );
    let early = get(&gw.url(&format!("/v/{photo}/640x480/80.webp")), &[]).await;
    assert_eq!(early.status(), 503);
    assert!(early.headers().contains_key("retry-after"));
    relay.restore();
    gw.wait_until_ready();
    let served = get(&gw.url(&format!("/v/{photo}/640x480/80.webp")), &[]).await;
    assert_eq!(served.status(), 200);
}

#[tokio::test]
async fn variants_of_one_original_asked_together_share_its_fetch_and_decode() {
    let o = Originals::new();
    let photo = o.make("photo.jpg", &["--size", "3200x2400", "--photo", "1"]);
    let store = tempfile::tempdir().unwrap();
    let gw = local_gateway(&o, &store, "");
    // One box in three formats and two qualities, asked at once: one fetch and one
    // shrink-on-load decode serve all four (a variant needing a finer scale than the decode
    // at hand would decode again).
    let paths = [
        "640x480/80.webp",
        "640x480/80.jpeg",
        "640x480/80.png",
        "640x480/60.webp",
    ];
    let tasks: Vec<_> = paths
        .iter()
        .map(|p| {
            let url = gw.url(&format!("/v/{photo}/{p}"));
            tokio::spawn(async move { fetched(&url).await.len() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap() > 0);
    }
    let m = gw.metrics().await;
    let count = |name: &str| series(&m, name);
    let fetched_once = "assetgate_variant_shared_total{outcome=\"done\",step=\"fetch\"}";
    let decoded_once = "assetgate_variant_shared_total{outcome=\"done\",step=\"decode\"}";
    assert_eq!(count(fetched_once), 1, "{m}");
    assert_eq!(count(decoded_once), 1, "{m}");
    assert_eq!(
        count("assetgate_variant_shared_total{outcome=\"shared\",step=\"decode\"}"),
        3
    );
}
