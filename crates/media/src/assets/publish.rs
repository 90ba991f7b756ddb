//! Publishing and unpublishing: an asset's visibility changes in the database at once (serving
//! follows it from the next request), then its bytes move to the placement of the new
//! visibility: copied and verified against the content hash, recorded, and the old object
//! removed when nothing else is served from it. A failure after the switch leaves the asset
//! served from its old object, which is still whole.

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
    /// The asset now.
    pub after: Asset,
    /// The object released by the move (its bytes were removed), if any.
    pub released: Option<(String, String)>,
}

/// Gives the asset `id` `visibility` and moves its bytes to that visibility's placement;
/// `None` when there is no such asset.
pub async fn set_visibility(
    store: &AssetStore,
    to: &Destinations<'_>,
    id: &str,
    visibility: Visibility,
) -> Result<Option<Republished>, StoreError> {
    let Some(before) = store.asset(id).await? else {
        return Ok(None);
    };
    let hash = before.blob_hash.clone();
    let blob = store
        .blob(&hash)
        .await?
        .ok_or_else(|| StoreError::Ingest(format!("asset {id}: its blob is missing")))?;
    let who = Ownership {
        owner: before.owner.clone(),
        module: before.module.clone(),
        visibility,
    };
    let name = if before.name.is_empty() {
        "file"
    } else {
        &before.name
    };
    let (backend, key) = to.place(&who, &hash, &blob.mime_type, name)?;
    // The switch first: serving follows the database from the next request.
    store.set_visibility(id, visibility).await?;
    let from_backend = if before.backend.is_empty() {
        to.stores.default_name()
    } else {
        &before.backend
    };
    let mut released = None;
    if (from_backend, before.storage_key.as_str()) != (backend, key.as_str()) {
        if store.object_slot(backend, &key, &hash).await? != ObjectSlot::Same {
            let from = to.store(from_backend)?;
            let target = to.store(backend)?;
            copy_verified(
                from.as_ref(),
                &before.storage_key,
                target.as_ref(),
                &key,
                &hash,
                &blob.mime_type,
            )
            .await?;
            store.put_object(backend, &key, &hash).await?;
        }
        released = store.move_asset(id, backend, &key).await?;
        if let Some((old_backend, old_key)) = &released {
            if let Some(s) = to.stores.get(old_backend) {
                if let Err(e) = s.delete_original(old_key).await {
                    tracing::error!(backend = %old_backend, key = %old_key, error = %e, "moved asset's old object not removed");
                }
            }
        }
    }
    let after = store
        .asset(id)
        .await?
        .ok_or_else(|| StoreError::Ingest(format!("asset {id} vanished while it moved")))?;
    Ok(Some(Republished {
        before,
        after,
        released,
    }))
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
