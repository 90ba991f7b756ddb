//! Adding originals: hash the bytes (SHA-256), store them where the placement for the
//! owner's module and visibility says (the key rendered from server-known fields only), record
//! the blob, the object and the owner's asset. Every step is idempotent: adding the same file
//! again uploads nothing and makes no second asset, and two owners of identical bytes under a
//! content-addressed placement share one object.

use super::originals::OriginalStores;
use super::placement::{PlacementFields, Placements};
use super::store::{Asset, AssetStore, Blob, NewAsset, ObjectSlot};
use super::{StoreError, Visibility};
use sha2::{Digest, Sha256};

/// What adding one original did.
#[derive(Debug, Clone)]
pub struct Added {
    /// The content hash (the URL's first segment).
    pub hash: String,
    /// Whether the bytes were uploaded now (false: the object held them already).
    pub uploaded: bool,
    /// The owner's asset (with the object it is served from).
    pub asset: Asset,
    /// The blob record.
    pub blob: Blob,
}

/// SHA-256 of `bytes` as 64 lower-case hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    kit::hex::encode(&Sha256::digest(bytes))
}

/// The media type of `bytes` by their first bytes, else by the file name.
pub fn media_type(bytes: &[u8], name: &str) -> String {
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

/// Where an original comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Bytes to write where the placement says.
    Upload,
    /// Already in the default backend under this key (a file inside a `dir` backend's root,
    /// registered where it lies: the quick start's samples).
    InPlace(&'a str),
}

/// Where the asset store writes: the backends and the placements choosing among them.
#[derive(Debug, Clone)]
pub struct Destinations<'a> {
    /// The backends, by name.
    pub stores: &'a OriginalStores,
    /// Which backend and key an owner's module and visibility get.
    pub placements: &'a Placements,
}

/// Adds `bytes` (named `name`: its type when the bytes do not tell, and `{name}` of a
/// template) for `who`, from `source`.
pub async fn add(
    store: &AssetStore,
    to: &Destinations<'_>,
    source: Source<'_>,
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
    let mime_type = media_type(&bytes, name);
    let (backend, key) = match source {
        Source::InPlace(key) => (to.stores.default_name(), key.to_string()),
        Source::Upload => {
            let placement = to.placements.choose(who.visibility, &who.module);
            let fields = PlacementFields {
                user: &who.owner,
                module: &who.module,
                hash: &hash,
                media_type: &mime_type,
                post: None,
                name: Some(name),
            };
            let key = placement
                .key
                .render(&fields)
                .map_err(|e| StoreError::Ingest(format!("{name}: cannot place it: {e}")))?;
            (placement.backend.as_str(), key)
        }
    };
    let target = to.stores.get(backend).ok_or_else(|| {
        StoreError::Ingest(format!(
            "{name}: the placement's backend \"{backend}\" is not a store"
        ))
    })?;
    let size = imagesize::blob_size(&bytes).ok();
    let blob = Blob {
        content_hash: hash.clone(),
        backend: backend.to_string(),
        storage_key: key.clone(),
        size_bytes: bytes.len() as u64,
        mime_type,
        width: size.map(|s| s.width as u64),
        height: size.map(|s| s.height as u64),
    };
    let slot = store.object_slot(backend, &key, &hash).await?;
    let uploaded = slot != ObjectSlot::Same;
    // Bytes first: no row ever points at nothing.
    if uploaded && matches!(source, Source::Upload) {
        target
            .write_original(&key, bytes, &blob.mime_type)
            .await
            .map_err(|e| StoreError::Ingest(format!("{name}: upload failed: {e}")))?;
    }
    // The blob keeps its first object as the one variants read; a blob stored before is
    // returned as it was.
    store.put_blob(&blob).await?;
    let blob = store.blob(&hash).await?.unwrap_or(blob);
    store.put_object(backend, &key, &hash).await?;
    let asset = store
        .put_asset(&NewAsset {
            hash: &hash,
            owner: &who.owner,
            module: &who.module,
            visibility: who.visibility,
            backend,
            storage_key: &key,
        })
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
    fn hashes_are_sha256_in_hex() {
        assert_eq!(
            content_hash(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    use crate::assets::placement::{KeyTemplate, Placement, PlacementRule, CONTENT_ADDRESSED};
    use origins::dir::DirBackend;
    use origins::spec::DirSpec;
    use origins::OriginalStore;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn dir_store(root: &std::path::Path) -> Arc<dyn OriginalStore> {
        std::fs::create_dir_all(root).unwrap();
        let spec = DirSpec {
            root: root.canonicalize().unwrap(),
            key_prefix: String::new(),
            strip_response_headers: Vec::new(),
        };
        Arc::new(DirBackend::new("test", &spec))
    }

    fn who(owner: &str, visibility: Visibility) -> Ownership {
        Ownership {
            owner: owner.into(),
            module: "avatars".into(),
            visibility,
        }
    }

    /// Every file below `root`, as paths relative to it.
    fn files(root: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn placements_decide_where_bytes_go_and_who_shares_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let (public_root, private_root) = (dir.path().join("pub"), dir.path().join("priv"));
        let stores = OriginalStores::new(
            "public".into(),
            BTreeMap::from([
                ("public".to_string(), dir_store(&public_root)),
                ("private".to_string(), dir_store(&private_root)),
            ]),
        )
        .unwrap();
        let placements = Placements {
            rules: vec![PlacementRule {
                visibility: Visibility::Private,
                module: None,
                placement: Placement {
                    backend: "private".into(),
                    key: KeyTemplate::parse("private/{user}/{module}/{hash}.{ext}").unwrap(),
                },
            }],
            default: Placement {
                backend: "public".into(),
                key: KeyTemplate::parse(CONTENT_ADDRESSED).unwrap(),
            },
        };
        let to = Destinations {
            stores: &stores,
            placements: &placements,
        };
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let png = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conf/sample/images/banner.png"
        ))
        .unwrap();
        let hash = content_hash(&png);
        let add = |owner: &'static str, visibility| {
            let (store, to, png) = (&store, &to, png.clone());
            async move {
                add(
                    store,
                    to,
                    Source::Upload,
                    png,
                    "../x.png",
                    &who(owner, visibility),
                )
                .await
                .unwrap()
            }
        };
        // Public: content-addressed, so two owners share one object, written once.
        let a = add("alice", Visibility::Public).await;
        let b = add("bob", Visibility::Public).await;
        assert!(a.uploaded && !b.uploaded);
        let shared = format!("{}/{}/{hash}", &hash[..2], &hash[2..4]);
        assert_eq!(files(&public_root), vec![shared.clone()]);
        assert_eq!(
            (a.asset.backend.as_str(), a.asset.storage_key.as_str()),
            ("public", shared.as_str())
        );
        // Private: each owner's own object under the key the server filled in.
        let c = add("carol", Visibility::Private).await;
        let again = add("carol", Visibility::Private).await;
        assert!(c.uploaded && !again.uploaded);
        assert_eq!(c.asset.id, again.asset.id);
        add("dave", Visibility::Private).await;
        assert_eq!(
            files(&private_root),
            vec![
                format!("private/carol/avatars/{hash}.png"),
                format!("private/dave/avatars/{hash}.png"),
            ]
        );
        // One blob; its variants read the first object.
        assert_eq!(store.counts().await.unwrap(), (1, 4));
        assert_eq!(c.blob.backend, "public");
        assert_eq!(
            std::fs::read(private_root.join(&c.asset.storage_key)).unwrap(),
            png
        );
        // A user that is not one safe segment is refused, and nothing is written.
        let e = add_err(&store, &to, png.clone(), "../evil").await;
        assert!(e.contains("user"), "{e}");
        assert_eq!(files(&private_root).len(), 2);
    }

    async fn add_err(
        store: &AssetStore,
        to: &Destinations<'_>,
        png: Vec<u8>,
        owner: &str,
    ) -> String {
        add(
            store,
            to,
            Source::Upload,
            png,
            "x.png",
            &who(owner, Visibility::Private),
        )
        .await
        .unwrap_err()
        .to_string()
    }
}
