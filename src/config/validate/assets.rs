//! `[assets]` and `[hosts.routes.variants]`.

use super::*;
use media::assets::ingest::Ownership;
use media::assets::service::StartupOriginals;
use media::assets::Visibility;
use media::variants::limits::VariantLimits;
use media::variants::Format;

/// Where the gateway keeps its state when `[assets] state_dir` is not set.
const DEFAULT_STATE_DIR: &str = "/var/lib/assetgate";

impl Validator<'_> {
    /// `[assets]`; `declared` maps backend names to their kinds.
    pub(super) fn assets(
        &mut self,
        value: Option<toml::Value>,
        declared: &BTreeMap<String, String>,
    ) -> Option<AssetSettings> {
        let raw = item::<RawAssets>(self.problems, "assets", value?)?;
        match declared.get(&raw.originals).map(String::as_str) {
            Some("s3" | "dir") => {}
            Some(kind) => self.problems.add(
                "assets.originals",
                format!(
                    "backend \"{}\" is a {kind} backend; originals live in an s3 or dir backend",
                    raw.originals
                ),
            ),
            None => self.problems.add(
                "assets.originals",
                format!("unknown backend \"{}\"", raw.originals),
            ),
        }
        let state_dir = self.resolve(
            raw.state_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_STATE_DIR)),
        );
        let database = self.asset_database(raw.database, &state_dir);
        let key_prefix = self.key_prefix(
            "assets.key_prefix",
            Some(raw.key_prefix.unwrap_or_else(|| "originals".into())),
        );
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
        Some(AssetSettings {
            database,
            originals: raw.originals,
            key_prefix,
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
        })
    }

    /// `assets.database`: a URL, or a secret holding one; SQLite in `state_dir` by default.
    fn asset_database(&mut self, database: Option<toml::Value>, state_dir: &Path) -> Secret {
        let database = match database {
            None => Secret::plain(format!("sqlite://{}/assets.db", state_dir.display())),
            Some(toml::Value::String(url)) => Secret::plain(self.database_url(&url)),
            Some(other) => {
                // An unreadable secret is reported here, once; the rest is still checked.
                let secret =
                    item::<RawSecret>(self.problems, "assets.database", other).and_then(|raw| {
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
        let visibility = match r.visibility.as_deref() {
            None => Visibility::Public,
            Some(v) => Visibility::parse(v).unwrap_or_else(|| {
                self.problems.add(
                    "assets.register.visibility",
                    format!("\"{v}\" is not a visibility; use public, private or admin-private"),
                );
                Visibility::Public
            }),
        };
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
    pub(super) fn route_variants(
        &mut self,
        path: &str,
        value: Option<toml::Value>,
    ) -> VariantLimits {
        let path = format!("{path}.variants");
        let raw = value
            .and_then(|v| item::<RawRouteVariants>(self.problems, &path, v))
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
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::from_toml_str;

    const BASE: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"
[backends.files]
kind = "dir"
root = "."
[backends.variants]
kind = "variants"
[[hosts]]
names = ["*"]
"#;

    fn problems(extra: &str) -> Vec<String> {
        match from_toml_str(&format!("{BASE}{extra}"), std::path::Path::new(".")) {
            Ok(_) => Vec::new(),
            Err(p) => p.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    const ROUTE: &str = "[[hosts.routes]]\npath = \"/img\"\nbackend = \"variants\"\n";

    #[test]
    fn a_variants_route_with_its_store_is_valid() {
        let ok = format!("{ROUTE}[assets]\noriginals = \"files\"\ndatabase = \"sqlite://a.db\"\n");
        assert_eq!(problems(&ok), Vec::<String>::new());
        let dir = tempfile::tempdir().unwrap();
        let config = from_toml_str(&format!("{BASE}{ok}"), dir.path()).unwrap();
        let assets = config.assets.unwrap();
        let expected = format!("sqlite://{}/a.db", dir.path().display());
        assert_eq!(assets.database.expose(), expected);
        assert_eq!(assets.key_prefix, "originals");
        let limits = config.hosts[0].routes[0].variants.clone().unwrap();
        assert_eq!(limits.widths, [320, 640, 1024, 1920]);
    }

    #[test]
    fn mistakes_are_reported_at_their_keys() {
        let no_store = problems(ROUTE);
        assert!(
            no_store.iter().any(|p| p.starts_with("backends.variants.kind: a variants backend needs [assets]")),
            "{no_store:?}"
        );
        let bad = problems(&format!(
            "{ROUTE}cache_control = \"public\"\n[hosts.routes.variants]\nwidths = [0]\nqualities = [101]\nformats = [\"gif\"]\nauto = [\"avif\"]\n\
             [assets]\noriginals = \"variants\"\ndatabase = \"mysql://x\"\navif_speed = 11\n"
        ));
        for expected in [
            "hosts[0].routes[0].cache_control:",
            "hosts[0].routes[0].variants.widths: 0 is out of range",
            "hosts[0].routes[0].variants.qualities: 101 is out of range",
            "hosts[0].routes[0].variants.formats: \"gif\" is not a format",
            "hosts[0].routes[0].variants.auto: avif is not in `formats`",
            "assets.originals: backend \"variants\" is a variants backend",
            "assets.database: must be a sqlite://PATH or postgres://",
            "assets.avif_speed:",
        ] {
            assert!(
                bad.iter().any(|p| p.starts_with(expected)),
                "{expected} in {bad:?}"
            );
        }
        let stray = problems(
            "[[hosts.routes]]\npath = \"/\"\nbackend = \"files\"\n[hosts.routes.variants]\nwidths = [1]\n",
        );
        assert!(
            stray
                .iter()
                .any(|p| p.starts_with("hosts[0].routes[0].variants: only a route")),
            "{stray:?}"
        );
    }
}
