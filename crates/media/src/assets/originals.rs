//! The backends an asset store writes its objects to and reads them from, by name: the
//! default one (`[assets] originals`) and each placement's.

use origins::OriginalStore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The stores of every placement, by backend name.
#[derive(Clone)]
pub struct OriginalStores {
    default: String,
    stores: BTreeMap<String, Arc<dyn OriginalStore>>,
}

impl std::fmt::Debug for OriginalStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginalStores")
            .field("default", &self.default)
            .field("stores", &self.stores.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OriginalStores {
    /// The stores, `default` among them; `None` when it is missing.
    pub fn new(
        default: String,
        stores: BTreeMap<String, Arc<dyn OriginalStore>>,
    ) -> Option<OriginalStores> {
        stores
            .contains_key(&default)
            .then_some(OriginalStores { default, stores })
    }

    /// Only `store`, named `name`.
    pub fn single(name: &str, store: Arc<dyn OriginalStore>) -> OriginalStores {
        OriginalStores {
            default: name.to_string(),
            stores: BTreeMap::from([(name.to_string(), store)]),
        }
    }

    /// No store at all (for tests of the store's side, where every object removal fails).
    #[cfg(test)]
    pub(crate) fn empty() -> OriginalStores {
        OriginalStores {
            default: String::new(),
            stores: BTreeMap::new(),
        }
    }

    /// The name of every backend, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }

    /// The name of the default backend.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// The store named `backend`; `""` (rows written before placements) is the default.
    pub fn get(&self, backend: &str) -> Option<&Arc<dyn OriginalStore>> {
        let name = if backend.is_empty() {
            &self.default
        } else {
            backend
        };
        self.stores.get(name)
    }
}
