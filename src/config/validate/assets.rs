//! The media checks that span domains: `[assets] originals` must name an s3 or dir backend.
//! The rest of `[assets]` and a route's `variants` table is checked by the media crate
//! (`media::config`).

use super::*;

impl Validator<'_> {
    /// `[assets] originals`; `declared` maps backend names to their kinds.
    pub(super) fn originals_backend(
        &mut self,
        assets: Option<&AssetSettings>,
        declared: &BTreeMap<String, String>,
    ) {
        let Some(assets) = assets else { return };
        match declared.get(&assets.originals).map(String::as_str) {
            Some("s3" | "dir") => {}
            Some(kind) => self.problems.add(
                "assets.originals",
                format!(
                    "backend \"{}\" is a {kind} backend; originals live in an s3 or dir backend",
                    assets.originals
                ),
            ),
            None => self.problems.add(
                "assets.originals",
                format!("unknown backend \"{}\"", assets.originals),
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
