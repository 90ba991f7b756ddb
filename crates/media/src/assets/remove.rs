//! Deleting an asset: its row goes, and with it whatever nothing references any more — its
//! object, and when it was the blob's last asset, the blob's row and every object of it. The
//! rows go first, in one transaction, then the bytes: a failure between leaves an object no
//! row points at (which reconciliation lists), never a row pointing at nothing.

use super::originals::OriginalStores;
use super::store::{AssetStore, Deleted};
use super::StoreError;

/// What deleting an asset did.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The rows deleted, and the objects released.
    pub deleted: Deleted,
    /// Objects whose bytes could not be removed, with the reason.
    pub left_behind: Vec<(String, String, String)>,
}

/// Deletes the asset `id` and the bytes nothing references any more; `None` when there is no
/// such asset.
pub async fn delete(
    store: &AssetStore,
    stores: &OriginalStores,
    id: &str,
) -> Result<Option<Removed>, StoreError> {
    let Some(deleted) = store.delete_asset(id).await? else {
        return Ok(None);
    };
    let mut left_behind = Vec::new();
    for (backend, key) in &deleted.objects {
        let result = match stores.get(backend) {
            Some(s) => s.delete_original(key).await.map_err(|e| e.to_string()),
            None => Err(format!("backend \"{backend}\" is no longer configured")),
        };
        if let Err(e) = result {
            tracing::error!(%backend, %key, error = %e, "object of a deleted asset not removed");
            left_behind.push((backend.clone(), key.clone(), e));
        }
    }
    Ok(Some(Removed {
        deleted,
        left_behind,
    }))
}

/// The cache tag every variant of the original `hash` carries (`Surrogate-Key`), by which a
/// deletion purges them in every tier of every gateway.
pub fn original_tag(hash: &str) -> String {
    format!("original-{hash}")
}
