//! Deleting an asset: its row goes, and with it whatever nothing references any more — its
//! object, and when it was the blob's last asset, the blob's row and every object of it. The
//! rows go first, in one transaction, then the bytes: an object that cannot be removed at once
//! is left to a durable `delete_object` job, never a row pointing at nothing.

use super::fleet::Fleet;
use super::originals::OriginalStores;
use super::store::{AssetStore, Deleted};
use super::StoreError;

/// What deleting an asset did.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The rows deleted, and the objects released.
    pub deleted: Deleted,
    /// Objects whose bytes could not be removed at once, with the reason and the durable
    /// `delete_object` job that keeps trying.
    pub left_behind: Vec<LeftBehind>,
}

/// An object whose bytes are still to be removed.
#[derive(Debug, Clone)]
pub struct LeftBehind {
    /// Its backend.
    pub backend: String,
    /// Its key.
    pub key: String,
    /// Why it could not be removed at once.
    pub error: String,
    /// The job retrying it.
    pub job: String,
}

/// Removes the bytes of an object nothing references any more: at once when the backend
/// allows, else through a durable `delete_object` job (returned with the reason).
pub async fn remove_object(
    store: &AssetStore,
    stores: &OriginalStores,
    backend: &str,
    key: &str,
) -> Result<Option<LeftBehind>, StoreError> {
    let result = match stores.get(backend) {
        Some(s) => s.delete_original(key).await.map_err(|e| e.to_string()),
        None => Err(format!("backend \"{backend}\" is not configured")),
    };
    let Err(error) = result else {
        return Ok(None);
    };
    tracing::warn!(%backend, %key, %error, "object not removed yet: queued");
    let payload = serde_json::json!({ "backend": backend, "key": key }).to_string();
    let job = store
        .enqueue(
            super::runner::DELETE_OBJECT,
            &payload,
            &super::jobs::Retry::default(),
        )
        .await?;
    Ok(Some(LeftBehind {
        backend: backend.to_string(),
        key: key.to_string(),
        error,
        job,
    }))
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
        left_behind.extend(remove_object(store, stores, backend, key).await?);
    }
    Ok(Some(Removed {
        deleted,
        left_behind,
    }))
}

/// What deleting an asset did, on the fleet too.
#[derive(Debug, Clone)]
pub struct Gone {
    /// What was deleted in the store and its backends.
    pub removed: Removed,
    /// Gateways that could not be told to forget the hash's lookup, if any.
    pub unforgotten: Option<String>,
    /// With the blob's last asset: the purge of its cached variants everywhere (its report).
    pub purged: Option<serde_json::Value>,
}

/// Deletes the asset `id` as [`delete`] does, then makes every gateway forget the hash's
/// lookup (so access follows the store from the next request) and, when the blob went with
/// it, purges every cached variant of it in every tier of every gateway by its tag.
pub async fn delete_everywhere(
    store: &AssetStore,
    stores: &OriginalStores,
    fleet: &dyn Fleet,
    id: &str,
) -> Result<Option<Gone>, StoreError> {
    let Some(removed) = delete(store, stores, id).await? else {
        return Ok(None);
    };
    let hash = &removed.deleted.asset.blob_hash;
    let unforgotten = fleet.forget(hash).await;
    let purged = match removed.deleted.blob_removed {
        true => Some(fleet.purge_tag(&original_tag(hash)).await),
        false => None,
    };
    Ok(Some(Gone {
        removed,
        unforgotten,
        purged,
    }))
}

/// The cache tag every variant of the original `hash` carries (`Surrogate-Key`), by which a
/// deletion purges them in every tier of every gateway.
pub fn original_tag(hash: &str) -> String {
    format!("original-{hash}")
}
