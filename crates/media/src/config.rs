//! The config of media: `[assets]` (the asset store, where originals live, the variant
//! workers) and a route's `variants` table, as written (serde structs that refuse unknown keys)
//! and as checked into [`AssetSettings`] and [`VariantLimits`]. That `[assets] originals`
//! names an s3 or dir backend, and that a variants backend has `[assets]`, are the
//! application's checks: they span the backends.

use crate::assets::ingest::{Ownership, UploadLimits};
use crate::assets::placement::{
    KeyTemplate, Placement, PlacementRule, Placements, CONTENT_ADDRESSED,
};
use crate::assets::reconcile::ReconcileSettings;
use crate::assets::retention::{Expiry, Retention, RetentionRule};
use crate::assets::service::StartupOriginals;
use crate::assets::Visibility;
use crate::variants::limits::VariantLimits;
use crate::variants::Format;
use kit::problems::Check;
use kit::secret::{RawSecret, Secret};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[hosts.routes.variants]`: the allowlists and source limits of a variants route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteVariants {
    /// Widths a variant may have (default 320, 640, 1024, 1920).
    pub widths: Option<Vec<u32>>,
    /// Heights a variant may have (default 240, 480, 768, 1080).
    pub heights: Option<Vec<u32>>,
    /// Qualities a variant may be encoded at, 1–100 (default 50, 60, 70, 75, 80, 85).
    pub qualities: Option<Vec<u32>>,
    /// Output formats a URL may name: `webp`, `jpeg`, `png`, `avif` (default all four).
    pub formats: Option<Vec<String>>,
    /// Formats `auto` chooses from by `Accept`, in preference order (default `webp`, `jpeg`;
    /// empty: `auto` is refused).
    pub auto: Option<Vec<String>>,
    /// Largest original read, e.g. `50MiB` (default 50MiB).
    pub max_source_bytes: Option<String>,
    /// Most pixels an original's header may declare (default 50000000); larger ones are
    /// refused with 422 before anything is decoded.
    pub max_source_pixels: Option<u64>,
    /// Time one variant may take, waiting for a worker included, e.g. `10s` (default 10s).
    pub timeout: Option<String>,
    /// Serve the original itself at `/{hash}/original`, with the same store-decided access as
    /// its variants (default false: variants only). Originals larger than `max_source_bytes`
    /// are refused.
    pub originals: Option<bool>,
}

/// `[assets]`: the asset metadata store, where originals live, and the variant workers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssets {
    /// Database URL: `sqlite://PATH` (created on first start; a relative path is relative to
    /// the config file's folder) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or
    /// `{ env = "VAR" }` / `{ file = "PATH" }` holding one. Default:
    /// `sqlite://{state_dir}/assets.db`.
    pub database: Option<toml::Value>,
    /// Folder for the gateway's own state, such as the default SQLite file (default
    /// `/var/lib/assetgate`; relative to the config file's folder).
    pub state_dir: Option<PathBuf>,
    /// The `s3` or `dir` backend of the default placement: originals no
    /// `[[assets.placements]]` entry places are written there, and read from there.
    pub originals: String,
    /// Key template of the default placement (default `{hash:2}/{hash:2:2}/{hash}`, the
    /// content-addressed layout `9f/86/9f86d0…`). Fields: `{user}`, `{module}`, `{hash}`,
    /// `{hash:LEN}`, `{hash:START:LEN}`, `{ext}` (of the type sniffed from the bytes),
    /// `{post}`, `{name}` (the file name, sanitised); every value is filled in by the server.
    pub key: Option<String>,
    /// Deprecated: a folder prepended to `key` (write it into `key` instead). Default none,
    /// so originals land at the backend's root, not in an `originals/` folder of it.
    pub key_prefix: Option<String>,
    /// Where assets of one visibility (and optionally one module) go instead of the default
    /// placement ([`RawPlacement`]); the first entry that matches wins.
    pub placements: Option<Vec<toml::Value>>,
    /// How long a hash's lookup is remembered on the request path, e.g. `5s` (default 5s).
    pub lookup_ttl: Option<String>,
    /// Most lookups remembered (default 10000).
    pub lookup_entries: Option<usize>,
    /// Decode/encode workers (default: one per core).
    pub workers: Option<usize>,
    /// Variant jobs that may wait for a worker before requests get 503 (default 4 per
    /// worker).
    pub queue: Option<usize>,
    /// rav1e speed of AVIF variants, 1 (slow, small) to 10 (fast) (default 8).
    pub avif_speed: Option<u8>,
    /// Originals registered at every start ([`RawRegister`]), e.g. the quick start's samples.
    pub register: Option<RawRegister>,
    /// What an upload through the admin API (`PUT /v1/assets`) may be ([`RawUpload`]).
    pub upload: Option<RawUpload>,
    /// Assets deleted on their own after a time ([`RawRetention`]).
    pub retention: Option<RawRetention>,
    /// The database compared with the backends ([`RawReconcile`]).
    pub reconcile: Option<RawReconcile>,
}

/// `[assets.reconcile]`: comparing the database with what the backends hold (rows whose
/// object is gone, objects without a row); always available on demand
/// (`assetgate assets reconcile`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReconcile {
    /// How often the fleet reconciles, e.g. `1d` (default: only on demand); one gateway does
    /// it.
    pub every: Option<String>,
    /// Remove objects that no row names once they are this old, e.g. `7d` (default: never;
    /// they are only reported). Only for backends that hold nothing but this store's assets.
    pub remove_orphans_after: Option<String>,
}

/// `[assets.retention]`: rules that delete assets once they have had their time, applied
/// once per fleet every `every` (and on demand by `assetgate assets gc`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// How often the fleet applies the rules, e.g. `1h` (default 1h); one gateway does it.
    pub every: Option<String>,
    /// The rules ([`RawRetentionRule`]); an asset any rule matches is deleted.
    pub rules: Option<Vec<toml::Value>>,
    /// Presigned uploads not completed this long after they were presigned are removed, with
    /// whatever the client sent (default `1d`).
    pub unfinished_uploads: Option<String>,
}

/// `[[assets.retention.rules]]`: which assets one rule applies to and when they expire
/// (exactly one of `delete_after` and `superseded_after`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetentionRule {
    /// The module it applies to (default: every module).
    pub module: Option<String>,
    /// The visibility it applies to: `public`, `private` or `admin-private` (default: all).
    pub visibility: Option<String>,
    /// Delete the assets this long after they were added, e.g. `30d` (drafts).
    pub delete_after: Option<String>,
    /// Delete an asset this long after a newer asset of the same owner and module was added,
    /// e.g. `7d` (the old versions of an avatar; the newest one always stays).
    pub superseded_after: Option<String>,
}

/// `[assets.upload]`: the limits of streamed uploads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    /// Largest body, e.g. `512MiB` (default 5GiB); a longer one is refused with 413 and
    /// nothing of it is kept.
    pub max_size: Option<String>,
    /// Media types accepted, as sniffed from the bytes (never the client's `Content-Type`);
    /// `image/*` matches a prefix. Default: any type. Another type is refused with 415.
    pub types: Option<Vec<String>>,
    /// How long a presigned upload form (`POST /v1/assets/presign`) may be used, e.g. `15m`
    /// (default 15m, at most 7d).
    pub presign_ttl: Option<String>,
}

/// `[[assets.placements]]`: the backend and key template of one visibility's (and
/// optionally one module's) assets, e.g. private files under `private/{user}/{module}/{hash}.{ext}`
/// in their own bucket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    /// `public`, `private` or `admin-private`.
    pub visibility: String,
    /// The module it applies to (default: every module).
    pub module: Option<String>,
    /// The `s3` or `dir` backend the bytes are written to.
    pub backend: String,
    /// Key template, with the fields of `[assets] key`.
    pub key: String,
}

/// `[assets.register]`: files registered (idempotently) at every start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegister {
    /// Files, or folders whose files are added (relative to the config file's folder).
    pub paths: Vec<PathBuf>,
    /// Owner of the assets (default `quickstart`).
    pub owner: Option<String>,
    /// Module of the assets (default `samples`).
    pub module: Option<String>,
    /// `public` (default), `private` or `admin-private`.
    pub visibility: Option<String>,
}

/// `[assets]`, validated.
#[derive(Debug, Clone)]
pub struct AssetSettings {
    /// Database URL (may hold a password: never logged unredacted).
    pub database: Secret,
    /// The `s3` or `dir` backend of the default placement.
    pub originals: String,
    /// Where each visibility's and module's assets are written (the default placement last).
    pub placements: Placements,
    /// The backend each `[[assets.placements]]` entry names, with the entry's key path (for
    /// the application's check that it is an s3 or dir backend).
    pub placement_backends: Vec<(String, String)>,
    /// How long a lookup is remembered.
    pub lookup_ttl: Duration,
    /// Most lookups remembered.
    pub lookup_entries: usize,
    /// Decode/encode workers.
    pub workers: usize,
    /// Jobs that may wait for a worker.
    pub queue: usize,
    /// rav1e speed for AVIF.
    pub avif_speed: u8,
    /// Originals registered at start.
    pub register: Option<StartupOriginals>,
    /// What a streamed upload may be.
    pub upload: UploadLimits,
    /// Assets and unfinished uploads deleted on their own (defaults without the section).
    pub retention: Retention,
    /// How the database is compared with the backends.
    pub reconcile: ReconcileSettings,
}

/// `[assets.upload] max_size` unless given.
const DEFAULT_UPLOAD_MAX: u64 = 5 << 30;

/// Where the gateway keeps its state when `[assets] state_dir` is not set.
const DEFAULT_STATE_DIR: &str = "/var/lib/assetgate";

/// Checks the media sections; every problem goes to the [`Check`] with its key path.
pub trait CheckMedia {
    /// `[assets]`, when present (see [`RawAssets`]).
    fn assets(&mut self, value: Option<toml::Value>) -> Option<AssetSettings>;
    /// `[hosts.routes.variants]` of a route at `path` (see [`RawRouteVariants`]).
    fn route_variants(&mut self, path: &str, value: Option<toml::Value>) -> VariantLimits;
}

impl CheckMedia for Check<'_> {
    fn assets(&mut self, value: Option<toml::Value>) -> Option<AssetSettings> {
        Media(self).assets(value)
    }

    fn route_variants(&mut self, path: &str, value: Option<toml::Value>) -> VariantLimits {
        Media(self).route_variants(path, value)
    }
}

/// The checks of the media sections on the shared [`Check`].
struct Media<'c, 'a>(&'c mut Check<'a>);

impl<'a> std::ops::Deref for Media<'_, 'a> {
    type Target = Check<'a>;
    fn deref(&self) -> &Check<'a> {
        self.0
    }
}

impl std::ops::DerefMut for Media<'_, '_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
    }
}

impl Media<'_, '_> {
    /// `[assets]`. That `originals` names an s3 or dir backend is the application's check.
    fn assets(&mut self, value: Option<toml::Value>) -> Option<AssetSettings> {
        let raw = self.item::<RawAssets>("assets", value?)?;
        let state_dir = self.resolve(
            raw.state_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_STATE_DIR)),
        );
        let (placements, placement_backends) = self.placements(&raw);
        let database = self.asset_database(raw.database, &state_dir);
        let workers = raw.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if workers == 0 || workers > 256 {
            self.problems
                .add("assets.workers", "must be between 1 and 256");
        }
        let avif_speed = raw.avif_speed.unwrap_or(8);
        if !(1..=10).contains(&avif_speed) {
            self.problems.add(
                "assets.avif_speed",
                "must be between 1 (slowest) and 10 (fastest)",
            );
        }
        let register = raw.register.map(|r| self.startup_originals(r));
        let upload = self.upload_limits(raw.upload.unwrap_or_default());
        let retention = self.retention(raw.retention.unwrap_or_default());
        let reconcile = self.reconcile(raw.reconcile.unwrap_or_default());
        Some(AssetSettings {
            database,
            originals: raw.originals,
            placements,
            placement_backends,
            lookup_ttl: self.duration(
                "assets.lookup_ttl",
                raw.lookup_ttl.as_deref(),
                Duration::from_secs(5),
            ),
            lookup_entries: raw.lookup_entries.unwrap_or(10_000).max(1),
            workers,
            queue: raw.queue.unwrap_or(workers * 4),
            avif_speed,
            register,
            upload,
            retention,
            reconcile,
        })
    }

    /// `[assets.reconcile]`.
    fn reconcile(&mut self, raw: RawReconcile) -> ReconcileSettings {
        let mut optional = |key: &str, text: Option<String>| {
            let text = text?;
            Some(self.duration(
                &format!("assets.reconcile.{key}"),
                Some(&text),
                Duration::from_secs(86_400),
            ))
        };
        ReconcileSettings {
            every: optional("every", raw.every),
            remove_orphans_after: optional("remove_orphans_after", raw.remove_orphans_after),
        }
    }

    /// `[assets.retention]`.
    fn retention(&mut self, raw: RawRetention) -> Retention {
        let every = self.duration(
            "assets.retention.every",
            raw.every.as_deref(),
            Duration::from_secs(3600),
        );
        let mut rules = Vec::new();
        for (i, value) in raw.rules.into_iter().flatten().enumerate() {
            let path = format!("assets.retention.rules[{i}]");
            let Some(r) = self.item::<RawRetentionRule>(&path, value) else {
                continue;
            };
            let visibility = r.visibility.as_deref().map(|v| {
                self.visibility(&format!("{path}.visibility"), Some(v), Visibility::Private)
            });
            if r.module.as_deref().is_some_and(str::is_empty) {
                self.problems.add(
                    format!("{path}.module"),
                    "must not be empty (leave it out for every module)",
                );
            }
            let day = Duration::from_secs(86_400);
            let expiry = match (r.delete_after, r.superseded_after) {
                (Some(d), None) => {
                    Expiry::Age(self.duration(&format!("{path}.delete_after"), Some(&d), day))
                }
                (None, Some(d)) => Expiry::Superseded(self.duration(
                    &format!("{path}.superseded_after"),
                    Some(&d),
                    day,
                )),
                _ => {
                    self.problems.add(
                        path.as_str(),
                        "needs exactly one of delete_after and superseded_after",
                    );
                    continue;
                }
            };
            rules.push(RetentionRule {
                module: r.module,
                visibility,
                expiry,
            });
        }
        let unfinished_uploads = self.duration(
            "assets.retention.unfinished_uploads",
            raw.unfinished_uploads.as_deref(),
            Duration::from_secs(86_400),
        );
        Retention {
            every,
            rules,
            unfinished_uploads,
        }
    }

    /// The default placement (`originals`, `key`, `key_prefix`) and `[[assets.placements]]`,
    /// with the backend each entry names by its key path.
    fn placements(&mut self, raw: &RawAssets) -> (Placements, Vec<(String, String)>) {
        let key = raw.key.as_deref().unwrap_or(CONTENT_ADDRESSED);
        let key = match raw.key_prefix.as_deref() {
            Some(prefix) => {
                let prefix = self.key_prefix("assets.key_prefix", Some(prefix.to_string()));
                self.warn(
                    "assets.key_prefix",
                    format!("is deprecated: write key = \"{prefix}/{key}\" instead"),
                );
                if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}/{key}")
                }
            }
            None => key.to_string(),
        };
        let default = Placement {
            backend: raw.originals.clone(),
            key: self.key_template("assets.key", &key),
        };
        let mut rules = Vec::new();
        let mut backends = Vec::new();
        for (i, value) in raw.placements.iter().flatten().enumerate() {
            let path = format!("assets.placements[{i}]");
            let Some(p) = self.item::<RawPlacement>(&path, value.clone()) else {
                continue;
            };
            let visibility = self.visibility(
                &format!("{path}.visibility"),
                Some(&p.visibility),
                Visibility::Public,
            );
            if p.module.as_deref().is_some_and(str::is_empty) {
                self.problems.add(
                    format!("{path}.module"),
                    "must not be empty (leave it out for every module)",
                );
            }
            backends.push((format!("{path}.backend"), p.backend.clone()));
            rules.push(PlacementRule {
                visibility,
                module: p.module,
                placement: Placement {
                    backend: p.backend,
                    key: self.key_template(&format!("{path}.key"), &p.key),
                },
            });
        }
        (Placements { rules, default }, backends)
    }

    /// `[assets.upload]`.
    fn upload_limits(&mut self, raw: RawUpload) -> UploadLimits {
        let max_size = match raw.max_size {
            None => DEFAULT_UPLOAD_MAX,
            Some(text) => self
                .size("assets.upload.max_size", &text)
                .map_or(DEFAULT_UPLOAD_MAX, |n| n as u64),
        };
        let types: Vec<String> = raw
            .types
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        for (i, t) in types.iter().enumerate() {
            let (main, sub) = t.split_once('/').unwrap_or((t, ""));
            if main.is_empty()
                || sub.is_empty()
                || main.contains('*')
                || sub[..sub.len() - 1].contains('*')
            {
                self.problems.add(
                    format!("assets.upload.types[{i}]"),
                    format!("\"{t}\" is not a media type like image/png or image/*"),
                );
            }
        }
        let presign_ttl = self
            .duration(
                "assets.upload.presign_ttl",
                raw.presign_ttl.as_deref(),
                Duration::from_secs(900),
            )
            .min(Duration::from_secs(7 * 86_400));
        UploadLimits {
            max_size,
            types,
            presign_ttl,
        }
    }

    /// A key template at `path`; a bad one is reported and stands in as the default layout.
    fn key_template(&mut self, path: &str, text: &str) -> KeyTemplate {
        KeyTemplate::parse(text).unwrap_or_else(|e| {
            self.problems.add(path, format!("\"{text}\" {e}"));
            KeyTemplate::parse(CONTENT_ADDRESSED).expect("the default layout parses")
        })
    }

    /// A visibility written at `path` (`default` when absent).
    fn visibility(&mut self, path: &str, text: Option<&str>, default: Visibility) -> Visibility {
        let Some(v) = text else {
            return default;
        };
        Visibility::parse(v).unwrap_or_else(|| {
            self.problems.add(
                path,
                format!("\"{v}\" is not a visibility; use public, private or admin-private"),
            );
            default
        })
    }

    /// `assets.database`: a URL, or a secret holding one; SQLite in `state_dir` by default.
    fn asset_database(&mut self, database: Option<toml::Value>, state_dir: &Path) -> Secret {
        let database = match database {
            None => Secret::plain(format!("sqlite://{}/assets.db", state_dir.display())),
            Some(toml::Value::String(url)) => Secret::plain(self.database_url(&url)),
            Some(other) => {
                // An unreadable secret is reported here, once; the rest is still checked.
                let secret = self
                    .item::<RawSecret>("assets.database", other)
                    .and_then(|raw| {
                        Secret::resolve(&raw, self.base)
                            .map_err(|e| self.problems.add("assets.database", e))
                            .ok()
                    });
                Secret::plain(secret.map_or(String::new(), |s| self.database_url(s.expose())))
            }
        };
        let url = database.expose();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !url.is_empty() && !known.iter().any(|k| url.starts_with(k)) {
            self.problems.add(
                "assets.database",
                "must be a sqlite://PATH or postgres://USER@HOST/DB URL",
            );
        }
        database
    }

    /// `[assets.register]`: files registered at every start, with their owner, module and
    /// visibility.
    fn startup_originals(&mut self, r: RawRegister) -> StartupOriginals {
        let visibility = self.visibility(
            "assets.register.visibility",
            r.visibility.as_deref(),
            Visibility::Public,
        );
        let paths = r.paths.iter().map(|p| self.resolve(p)).collect::<Vec<_>>();
        for (i, p) in paths.iter().enumerate() {
            if !p.exists() {
                self.problems.add(
                    format!("assets.register.paths[{i}]"),
                    format!("{} does not exist", p.display()),
                );
            }
        }
        StartupOriginals {
            paths,
            who: Ownership {
                owner: r.owner.unwrap_or_else(|| "quickstart".into()),
                module: r.module.unwrap_or_else(|| "samples".into()),
                visibility,
            },
        }
    }

    /// A SQLite URL with a relative path made absolute against the config file's folder.
    fn database_url(&self, url: &str) -> String {
        match url.strip_prefix("sqlite://") {
            Some(rest) if !rest.starts_with('/') => {
                let (path, query) = rest
                    .split_once('?')
                    .map_or((rest, None), |(p, q)| (p, Some(q)));
                let full = self.resolve(Path::new(path));
                match query {
                    Some(q) => format!("sqlite://{}?{q}", full.display()),
                    None => format!("sqlite://{}", full.display()),
                }
            }
            _ => url.to_string(),
        }
    }

    /// `[hosts.routes.variants]` of a route at `path`.
    fn route_variants(&mut self, path: &str, value: Option<toml::Value>) -> VariantLimits {
        let path = format!("{path}.variants");
        let raw = value
            .and_then(|v| self.item::<RawRouteVariants>(&path, v))
            .unwrap_or_default();
        let defaults = VariantLimits::default();
        let mut list = |name: &str, values: Option<Vec<u32>>, default: Vec<u32>, max: u32| {
            let values = values.unwrap_or(default);
            if values.is_empty() {
                self.problems
                    .add(format!("{path}.{name}"), "must list at least one value");
            }
            if let Some(bad) = values.iter().find(|v| **v == 0 || **v > max) {
                self.problems.add(
                    format!("{path}.{name}"),
                    format!("{bad} is out of range (1 to {max})"),
                );
            }
            values
        };
        let widths = list("widths", raw.widths, defaults.widths.clone(), 16_384);
        let heights = list("heights", raw.heights, defaults.heights.clone(), 16_384);
        let qualities = list("qualities", raw.qualities, defaults.qualities.clone(), 100);
        let mut formats_of = |name: &str, values: Option<Vec<String>>, default: Vec<Format>| {
            let Some(values) = values else {
                return default;
            };
            values
                .iter()
                .filter_map(|v| {
                    Format::from_ext(v).or_else(|| {
                        self.problems.add(
                            format!("{path}.{name}"),
                            format!("\"{v}\" is not a format; use webp, jpeg, png or avif"),
                        );
                        None
                    })
                })
                .collect()
        };
        let formats = formats_of("formats", raw.formats, defaults.formats.clone());
        let auto = formats_of("auto", raw.auto, defaults.auto.clone());
        if formats.is_empty() {
            self.problems
                .add(format!("{path}.formats"), "must list at least one format");
        }
        if let Some(f) = auto.iter().find(|f| !formats.contains(f)) {
            self.problems.add(
                format!("{path}.auto"),
                format!("{} is not in `formats`", f.name()),
            );
        }
        let max_source_bytes = match raw.max_source_bytes {
            None => defaults.max_source_bytes,
            Some(text) => self
                .size(&format!("{path}.max_source_bytes"), &text)
                .map_or(defaults.max_source_bytes, |n| n as u64),
        };
        let max_source_pixels = raw.max_source_pixels.unwrap_or(defaults.max_source_pixels);
        if max_source_pixels == 0 {
            self.problems.add(
                format!("{path}.max_source_pixels"),
                "must be greater than zero",
            );
        }
        VariantLimits {
            widths,
            heights,
            qualities,
            formats,
            auto,
            max_source_bytes,
            max_source_pixels,
            timeout: self.duration(
                &format!("{path}.timeout"),
                raw.timeout.as_deref(),
                defaults.timeout,
            ),
            originals: raw.originals.unwrap_or(false),
        }
    }
}
