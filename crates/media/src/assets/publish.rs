//! Publishing and unpublishing: an asset's visibility changes in the database at once (serving
//! follows it from the next request), then a durable `move` job moves its bytes to the
//! placement of the new visibility: copied and verified against the content hash, recorded,
//! and the old object removed when nothing else is served from it. Until the job has run (or
//! while it is retried), the asset is served from its old object, which is still whole.

use super::ingest::{Destinations, Ownership};
use super::store::{Asset, AssetStore, ObjectSlot};
use super::{StoreError, Visibility};
use origins::OriginalStore;
use sha2::{Digest, Sha256};

/// What changing an asset's visibility did.
#[derive(Debug, Clone)]
pub struct Republished {
    /// The asset before the change.
    pub before: Asset,
    /// The asset now (the new visibility; its bytes move in the job).
    pub after: Asset,
    /// The durable job moving its bytes to the new placement.
    pub job: String,
}

/// Gives the asset `id` `visibility` at once and queues the job that moves its bytes to that
/// visibility's placement; `None` when there is no such asset.
pub async fn set_visibility(
    store: &AssetStore,
    id: &str,
    visibility: Visibility,
) -> Result<Option<Republished>, StoreError> {
    let Some(before) = store.asset(id).await? else {
        return Ok(None);
    };
    store.set_visibility(id, visibility).await?;
    let payload = serde_json::json!({ "asset": id }).to_string();
    let job = store
        .enqueue(
            super::runner::MOVE,
            &payload,
            &super::jobs::Retry::default(),
        )
        .await?;
    let after = store
        .asset(id)
        .await?
        .ok_or_else(|| StoreError::Ingest(format!("asset {id} vanished")))?;
    Ok(Some(Republished { before, after, job }))
}

/// Moves the asset `id`'s bytes to the placement of its current visibility (the `move` job):
/// copied and verified unless that object holds them already, recorded, and the old object
/// removed once nothing else is served from it. Safe to run again: an asset already in place,
/// or gone, is left as it is. Returns the object released, if any.
pub async fn move_to_placement(
    store: &AssetStore,
    to: &Destinations<'_>,
    id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let Some(asset) = store.asset(id).await? else {
        return Ok(None);
    };
    let hash = asset.blob_hash.clone();
    let blob = store
        .blob(&hash)
        .await?
        .ok_or_else(|| StoreError::Ingest(format!("asset {id}: its blob is missing")))?;
    let who = Ownership {
        owner: asset.owner.clone(),
        module: asset.module.clone(),
        visibility: asset.visibility,
    };
    let name = if asset.name.is_empty() {
        "file"
    } else {
        &asset.name
    };
    let (backend, key) = to.place(&who, &hash, &blob.mime_type, name)?;
    let from_backend = if asset.backend.is_empty() {
        to.stores.default_name()
    } else {
        &asset.backend
    };
    if (from_backend, asset.storage_key.as_str()) == (backend, key.as_str()) {
        return Ok(None);
    }
    if store.object_slot(backend, &key, &hash).await? != ObjectSlot::Same {
        let from = to.store(from_backend)?;
        let target = to.store(backend)?;
        copy_verified(
            from.as_ref(),
            &asset.storage_key,
            target.as_ref(),
            &key,
            &hash,
            &blob.mime_type,
        )
        .await?;
        store.put_object(backend, &key, &hash).await?;
    }
    let released = store.move_asset(id, backend, &key).await?;
    if let Some((old_backend, old_key)) = &released {
        super::remove::remove_object(store, to.stores, old_backend, old_key).await?;
    }
    Ok(released)
}

/// Copies the object `from_key` of `from` to `to_key` of `to`, piece by piece, checking the
/// bytes against `hash` before the copy becomes visible (a mismatch leaves nothing).
async fn copy_verified(
    from: &dyn OriginalStore,
    from_key: &str,
    to: &dyn OriginalStore,
    to_key: &str,
    hash: &str,
    media_type: &str,
) -> Result<(), StoreError> {
    let failed =
        |e: origins::OriginalError| StoreError::Ingest(format!("copy {from_key} → {to_key}: {e}"));
    let mut reader = from.open_original(from_key).await.map_err(failed)?;
    let mut writer = to.begin_upload(to_key, media_type).await.map_err(failed)?;
    let mut hasher = Sha256::new();
    while let Some(piece) = reader.next_piece().await.map_err(failed)? {
        hasher.update(&piece);
        writer.write(&piece).await.map_err(failed)?;
    }
    let copied = kit::hex::encode(&hasher.finalize());
    if copied != hash {
        return Err(StoreError::Ingest(format!(
            "copy {from_key} → {to_key}: the bytes read hash to {copied}, not {hash}"
        )));
    }
    writer.finish().await.map_err(failed)?;
    Ok(())
}
