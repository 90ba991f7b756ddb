//! Deleting an asset: its row goes, and with it whatever nothing references any more — its
//! object, and when it was the blob's last asset, the blob's row and every object of it. The
//! rows go first, in one transaction, then the bytes: an object that cannot be removed at once
//! is left to a durable `delete_object` job, never a row pointing at nothing.

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

/// The cache tag every variant of the original `hash` carries (`Surrogate-Key`), by which a
/// deletion purges them in every tier of every gateway.
pub fn original_tag(hash: &str) -> String {
    format!("original-{hash}")
}
