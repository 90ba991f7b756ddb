//! The backends as this application uses them: the `origins` crate's kinds serving this
//! crate's routes ([`crate::config::Route`], read through [`RouteView`]).

pub use origins::*;

/// A live backend of this gateway.
pub type Backend = origins::Backend<crate::config::Route>;

/// The live backends, by name.
pub type Backends = origins::Backends<crate::config::Route>;

/// What the backend kinds read of a route: its path mapping, and the query an origin is sent
/// (without the route's credential parameters; on a cached route, as its key holds it).
impl RouteView for crate::config::Route {
    fn strip_prefix(&self) -> Option<&str> {
        self.strip_prefix.as_deref()
    }

    fn add_prefix(&self) -> &str {
        &self.add_prefix
    }

    fn origin_query(&self, query: Option<&str>) -> Option<String> {
        let query = self.access.strip(query);
        match &self.cache {
            Some(policy) => {
                kit::params::forwarded_query(query.as_deref(), policy.query_keys.as_deref())
            }
            None => query.map(|q| q.into_owned()),
        }
    }
}

/// The asset store's backends, by name: the default placement's and every placement's, each
/// the live backend of that name. The message names the first missing one.
pub fn original_stores(
    settings: &media::config::AssetSettings,
    backends: &Backends,
) -> Result<media::assets::originals::OriginalStores, String> {
    let mut stores = std::collections::BTreeMap::new();
    for name in settings.placements.backends() {
        let backend = backends
            .get(name)
            .ok_or_else(|| format!("assets: no backend \"{name}\""))?;
        let store: std::sync::Arc<dyn OriginalStore> = backend.clone();
        stores.insert(name.to_string(), store);
    }
    media::assets::originals::OriginalStores::new(settings.originals.clone(), stores)
        .ok_or_else(|| format!("assets.originals: no backend \"{}\"", settings.originals))
}
