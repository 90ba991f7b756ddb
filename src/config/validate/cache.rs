//! The cache checks that span domains: `[cache.object]` must name an s3 backend. The rest of
//! `[cache]` and a route's `cache` table is checked by the cache crate (`cache::config`).

use super::*;

impl Validator<'_> {
    /// `[cache.object] backend`; `declared` maps backend names to their kinds.
    pub(super) fn object_tier_backend(
        &mut self,
        object: Option<&::cache::object::ObjectSettings>,
        declared: &BTreeMap<String, String>,
    ) {
        let Some(object) = object else { return };
        match declared.get(&object.backend).map(String::as_str) {
            Some("s3") => {}
            Some(other) => self.problems.add(
                "cache.object.backend",
                format!(
                    "\"{}\" is a {other} backend; the object tier needs an s3 backend",
                    object.backend
                ),
            ),
            None => self.problems.add(
                "cache.object.backend",
                format!("no backend \"{}\"", object.backend),
            ),
        }
    }
}
