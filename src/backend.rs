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
