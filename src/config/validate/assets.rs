//! The media checks that span domains: `[assets] originals` and every placement's backend
//! must name an s3 or dir backend. The rest of `[assets]` and a route's `variants` table is
//! checked by the media crate (`media::config`).

use super::*;

impl Validator<'_> {
    /// `[assets] originals` and `[[assets.placements]] backend`; `declared` maps backend names
    /// to their kinds.
    pub(super) fn originals_backend(
        &mut self,
        assets: Option<&AssetSettings>,
        declared: &BTreeMap<String, String>,
    ) {
        let Some(assets) = assets else { return };
        self.store_backend("assets.originals", &assets.originals, declared);
        for (path, backend) in &assets.placement_backends {
            self.store_backend(path, backend, declared);
        }
    }

    /// `[assets.reconcile] remove_orphans_after` removes every object of the store's backends
    /// that no row names: refused when one of them also holds the object cache tier's
    /// entries (`object_tier`), which have no rows and would all be removed.
    pub(super) fn orphan_removal(
        &mut self,
        assets: Option<&AssetSettings>,
        object_tier: Option<&str>,
    ) {
        let (Some(assets), Some(tier)) = (assets, object_tier) else {
            return;
        };
        if assets.reconcile.remove_orphans_after.is_none() {
            return;
        }
        let store_backends = std::iter::once(assets.originals.as_str())
            .chain(assets.placement_backends.iter().map(|(_, b)| b.as_str()));
        if store_backends.into_iter().any(|b| b == tier) {
            self.problems.add(
                "assets.reconcile.remove_orphans_after",
                format!(
                    "backend \"{tier}\" also holds the object cache tier ([cache.object]), whose \
                     entries have no rows and would be removed; give the cache its own backend"
                ),
            );
        }
    }

    /// The backend `name` at `path` is declared and an s3 or dir backend.
    fn store_backend(&mut self, path: &str, name: &str, declared: &BTreeMap<String, String>) {
        match declared.get(name).map(String::as_str) {
            Some("s3" | "dir") => {}
            Some(kind) => self.problems.add(
                path,
                format!(
                    "backend \"{name}\" is a {kind} backend; originals live in an s3 or dir backend"
                ),
            ),
            None => self
                .problems
                .add(path, format!("unknown backend \"{name}\"")),
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
    fn orphan_removal_is_refused_on_the_object_tiers_backend() {
        let base = format!(
            "{ROUTE}[backends.bucket]\nkind = \"s3\"\nbucket = \"assets-bucket\"\nregion = \"r\"\n\
             [cache.object]\nbackend = \"bucket\"\n\
             [assets]\noriginals = \"bucket\"\ndatabase = \"sqlite://a.db\"\n"
        );
        assert_eq!(problems(&base), Vec::<String>::new());
        let removing = format!("{base}[assets.reconcile]\nremove_orphans_after = \"7d\"\n");
        let found = problems(&removing);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "assets.reconcile.remove_orphans_after: backend \"bucket\" also holds"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_variants_route_with_its_store_is_valid() {
        let ok = format!("{ROUTE}[assets]\noriginals = \"files\"\ndatabase = \"sqlite://a.db\"\n");
        assert_eq!(problems(&ok), Vec::<String>::new());
        let dir = tempfile::tempdir().unwrap();
        let config = from_toml_str(&format!("{BASE}{ok}"), dir.path()).unwrap();
        let assets = config.assets.unwrap();
        let expected = format!("sqlite://{}/a.db", dir.path().display());
        assert_eq!(assets.database.expose(), expected);
        // The default placement is content-addressed at the backend's root.
        assert_eq!(assets.placements.default.backend, "files");
        assert_eq!(
            assets.placements.default.key.as_str(),
            "{hash:2}/{hash:2:2}/{hash}"
        );
        assert!(assets.placements.rules.is_empty());
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

    #[test]
    fn placements_name_store_backends_and_valid_templates() {
        let base =
            format!("{ROUTE}[assets]\noriginals = \"files\"\ndatabase = \"sqlite://a.db\"\n");
        let ok = format!(
            "{base}[[assets.placements]]\nvisibility = \"private\"\nmodule = \"avatars\"\n\
             backend = \"files\"\nkey = \"private/{{user}}/{{module}}/{{hash}}.{{ext}}\"\n"
        );
        let config = from_toml_str(&format!("{BASE}{ok}"), std::path::Path::new(".")).unwrap();
        let placements = config.assets.unwrap().placements;
        assert_eq!(placements.rules.len(), 1);
        assert_eq!(
            placements
                .choose(media::assets::Visibility::Private, "avatars")
                .key
                .as_str(),
            "private/{user}/{module}/{hash}.{ext}"
        );
        let bad = problems(&format!(
            "{base}key = \"{{owner}}/{{hash}}\"\n\
             [[assets.placements]]\nvisibility = \"secret\"\nbackend = \"variants\"\nkey = \"a/../{{hash}}\"\n\
             [[assets.placements]]\nvisibility = \"public\"\nbackend = \"nowhere\"\nkey = \"{{hash}}\"\nbucket = \"x\"\n\
             [[assets.placements]]\nvisibility = \"public\"\nbackend = \"nowhere\"\nkey = \"{{hash}}\"\n"
        ));
        for expected in [
            "assets.key: \"{owner}/{hash}\" {owner} is not a field",
            "assets.placements[0].visibility: \"secret\" is not a visibility",
            "assets.placements[0].backend: backend \"variants\" is a variants backend",
            "assets.placements[0].key: \"a/../{hash}\" must not hold",
            "assets.placements[1]: unknown field `bucket`",
            "assets.placements[2].backend: unknown backend \"nowhere\"",
        ] {
            assert!(
                bad.iter().any(|p| p.starts_with(expected)),
                "{expected} in {bad:?}"
            );
        }
    }

    #[test]
    fn the_old_key_prefix_still_works_with_a_warning() {
        let text = format!(
            "{BASE}{ROUTE}[assets]\noriginals = \"files\"\ndatabase = \"sqlite://a.db\"\nkey_prefix = \"originals\"\n"
        );
        let config = from_toml_str(&text, std::path::Path::new(".")).unwrap();
        assert_eq!(
            config.assets.unwrap().placements.default.key.as_str(),
            "originals/{hash:2}/{hash:2:2}/{hash}"
        );
        assert!(config
            .warnings
            .iter()
            .any(|w| w.path == "assets.key_prefix" && w.message.contains("deprecated")));
    }
}
