//! Adding originals: hash the bytes (SHA-256), store them once under a key derived from the
//! hash in the originals backend, record the blob, and record the owner's asset. Every step
//! is idempotent: adding the same file again uploads nothing and makes no second asset, and
//! two owners of identical bytes share one blob.

use super::store::{Asset, AssetStore, Blob};
use super::{StoreError, Visibility};
use origins::OriginalStore;
use sha2::{Digest, Sha256};

/// What adding one original did.
#[derive(Debug, Clone)]
pub struct Added {
    /// The content hash (the URL's first segment).
    pub hash: String,
    /// Whether the bytes were uploaded now (false: the blob was already stored).
    pub uploaded: bool,
    /// The owner's asset.
    pub asset: Asset,
    /// The blob record.
    pub blob: Blob,
}

/// SHA-256 of `bytes` as 64 lower-case hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    kit::hex::encode(&Sha256::digest(bytes))
}

/// The object key of the original with `hash` under `prefix`: `prefix/ab/cd/abcd…`, so no
/// folder or listing holds more than 65536 originals' worth of names.
pub fn storage_key(prefix: &str, hash: &str) -> String {
    kit::path::join_key(&[prefix, &hash[..2], &hash[2..4], hash])
}

/// The media type of an image by its first bytes, else by the file name.
fn media_type(bytes: &[u8], name: &str) -> String {
    match imagesize::image_type(bytes) {
        Ok(imagesize::ImageType::Jpeg) => "image/jpeg".into(),
        Ok(imagesize::ImageType::Png) => "image/png".into(),
        Ok(imagesize::ImageType::Gif) => "image/gif".into(),
        Ok(imagesize::ImageType::Webp) => "image/webp".into(),
        Ok(imagesize::ImageType::Heif(_)) => "image/avif".into(),
        _ => mime_guess::from_path(name)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
    }
}

/// Whom an original added belongs to.
#[derive(Debug, Clone)]
pub struct Ownership {
    /// The owner (a credential's user).
    pub owner: String,
    /// The product part, e.g. `avatars`.
    pub module: String,
    /// Who may see it.
    pub visibility: Visibility,
}

/// Where an original's bytes go.
#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    /// Uploaded under the hash-derived key below this prefix.
    Upload(&'a str),
    /// Already in the originals backend under this key (a file inside a `dir` backend's
    /// root, registered where it lies: the quick start's samples).
    InPlace(&'a str),
}

/// Adds `bytes` (named `name`, for its media type when the bytes do not tell) for `who`,
/// stored in `originals` as `placement` says unless the blob is stored already.
pub async fn add(
    store: &AssetStore,
    originals: &dyn OriginalStore,
    placement: Placement<'_>,
    bytes: Vec<u8>,
    name: &str,
    who: &Ownership,
) -> Result<Added, StoreError> {
    if who.owner.is_empty() || who.module.is_empty() {
        return Err(StoreError::Ingest(
            "owner and module must not be empty".into(),
        ));
    }
    let hash = content_hash(&bytes);
    let (uploaded, blob) = match store.blob(&hash).await? {
        Some(blob) => (false, blob),
        None => {
            let size = imagesize::blob_size(&bytes).ok();
            let key = match placement {
                Placement::Upload(prefix) => storage_key(prefix, &hash),
                Placement::InPlace(key) => key.to_string(),
            };
            let blob = Blob {
                storage_key: key,
                content_hash: hash.clone(),
                size_bytes: bytes.len() as u64,
                mime_type: media_type(&bytes, name),
                width: size.map(|s| s.width as u64),
                height: size.map(|s| s.height as u64),
            };
            // Bytes first: a blob row never points at nothing.
            if let Placement::Upload(_) = placement {
                originals
                    .write_original(&blob.storage_key, bytes, &blob.mime_type)
                    .await
                    .map_err(|e| StoreError::Ingest(format!("{name}: upload failed: {e}")))?;
            }
            store.put_blob(&blob).await?;
            (true, blob)
        }
    };
    let asset = store
        .put_asset(&hash, &who.owner, &who.module, who.visibility)
        .await?;
    Ok(Added {
        hash,
        uploaded,
        asset,
        blob,
    })
}

/// The files to add for `paths`: each file itself, each folder's files (not recursing into
/// sub-folders, skipping hidden names), in name order.
pub fn files_of(paths: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>, StoreError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| StoreError::Ingest(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| StoreError::Ingest(format!("{}: {e}", path.display())))?
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_hash() {
        let hash = content_hash(b"test");
        assert_eq!(
            hash,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(
            storage_key("originals", &hash),
            format!("originals/9f/86/{hash}")
        );
        assert_eq!(storage_key("", &hash), format!("9f/86/{hash}"));
    }
}
