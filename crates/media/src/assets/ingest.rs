//! Adding originals: hash the bytes (SHA-256), store them where the placement for the
//! owner's module and visibility says (the key rendered from server-known fields only), record
//! the blob, the object and the owner's asset. Every step is idempotent: adding the same file
//! again uploads nothing and makes no second asset, and two owners of identical bytes under a
//! content-addressed placement share one object.

use super::originals::OriginalStores;
use super::placement::{PlacementFields, Placements};
use super::store::{Asset, AssetStore, Blob, NewAsset, ObjectSlot};
use super::{StoreError, Visibility};
use origins::OriginalStore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

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

/// The media type of `bytes` by their first bytes, else by the file name (for an operator's
/// own files: `assetgate assets add`, `[assets.register]`).
pub fn media_type(bytes: &[u8], name: &str) -> String {
    sniffed_image(bytes).map_or_else(
        || {
            mime_guess::from_path(name)
                .first_or_octet_stream()
                .essence_str()
                .to_string()
        },
        str::to_string,
    )
}

/// The image type the first bytes show.
fn sniffed_image(bytes: &[u8]) -> Option<&'static str> {
    match imagesize::image_type(bytes).ok()? {
        imagesize::ImageType::Jpeg => Some("image/jpeg"),
        imagesize::ImageType::Png => Some("image/png"),
        imagesize::ImageType::Gif => Some("image/gif"),
        imagesize::ImageType::Webp => Some("image/webp"),
        // imagesize calls every ISO-BMFF `ftyp` HEIF: only AVIF's brands are AVIF.
        // (major brand at 8..12, compatible brands from 16 to the box's end).
        imagesize::ImageType::Heif(_) => {
            let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
            let brands = bytes.get(8..size.min(bytes.len()))?;
            let has = |b: &[u8]| brands.chunks(4).any(|c| c == b);
            if has(b"avif") || has(b"avis") {
                Some("image/avif")
            } else if has(b"heic") || has(b"heix") || has(b"mif1") {
                Some("image/heic")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The media type of an upload, from its bytes alone (a client's name or `Content-Type` is
/// never believed): the image types, PDF, MP4, then `text/plain` for UTF-8 without control
/// characters, else `application/octet-stream`. SVG counts as text: it can carry scripts.
pub fn sniffed_type(head: &[u8]) -> &'static str {
    if let Some(image) = sniffed_image(head) {
        return image;
    }
    if head.starts_with(b"%PDF-") {
        return "application/pdf";
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    // A head cut inside a UTF-8 sequence is still text.
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    match text {
        Some(t)
            if !t
                .chars()
                .any(|c| c.is_control() && !"\n\r\t\x0c".contains(c)) =>
        {
            "text/plain"
        }
        _ => "application/octet-stream",
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
        Source::InPlace(key) => (to.stores.default_name().to_string(), key.to_string()),
        Source::Upload => {
            let (backend, key) = to.place(who, &hash, &mime_type, name)?;
            (backend.to_string(), key)
        }
    };
    let target = to.store(&backend)?;
    let size = imagesize::blob_size(&bytes).ok();
    let blob = Blob {
        content_hash: hash.clone(),
        backend: backend.clone(),
        storage_key: key.clone(),
        size_bytes: bytes.len() as u64,
        mime_type,
        width: size.map(|s| s.width as u64),
        height: size.map(|s| s.height as u64),
    };
    let slot = store.object_slot(&backend, &key, &hash).await?;
    let uploaded = slot != ObjectSlot::Same;
    // Bytes first: no row ever points at nothing.
    if uploaded && matches!(source, Source::Upload) {
        target
            .write_original(&key, bytes, &blob.mime_type)
            .await
            .map_err(|e| StoreError::Ingest(format!("{name}: upload failed: {e}")))?;
    }
    let (blob, asset) = record(store, blob, who, name).await?;
    Ok(Added {
        hash,
        uploaded,
        asset,
        blob,
    })
}

impl Destinations<'_> {
    /// The backend and key of `who`'s asset with these bytes, as its placement says.
    pub(super) fn place(
        &self,
        who: &Ownership,
        hash: &str,
        media_type: &str,
        name: &str,
    ) -> Result<(&str, String), StoreError> {
        let placement = self.placements.choose(who.visibility, &who.module);
        let fields = PlacementFields {
            user: &who.owner,
            module: &who.module,
            hash,
            media_type,
            post: None,
            name: Some(name),
        };
        let key = placement
            .key
            .render(&fields)
            .map_err(|e| StoreError::Ingest(format!("{name}: cannot place it: {e}")))?;
        Ok((placement.backend.as_str(), key))
    }

    /// The store named `backend`.
    pub(crate) fn store(&self, backend: &str) -> Result<&Arc<dyn OriginalStore>, StoreError> {
        self.stores.get(backend).ok_or_else(|| {
            StoreError::Ingest(format!(
                "the placement's backend \"{backend}\" is not a store"
            ))
        })
    }
}

/// Records `blob` (whose object now holds its bytes), its object and `who`'s asset on it. The
/// blob keeps its first object as the one variants read: a blob stored before comes back as
/// it was.
async fn record(
    store: &AssetStore,
    blob: Blob,
    who: &Ownership,
    name: &str,
) -> Result<(Blob, Asset), StoreError> {
    let name = super::placement::sanitised_name(name);
    let (backend, key, hash) = (
        blob.backend.clone(),
        blob.storage_key.clone(),
        blob.content_hash.clone(),
    );
    store.put_blob(&blob).await?;
    let blob = store.blob(&hash).await?.unwrap_or(blob);
    store.put_object(&backend, &key, &hash).await?;
    let asset = store
        .put_asset(&NewAsset {
            hash: &hash,
            owner: &who.owner,
            module: &who.module,
            visibility: who.visibility,
            backend: &backend,
            storage_key: &key,
            name: &name,
        })
        .await?;
    Ok((blob, asset))
}

/// What a streamed upload may be.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    /// Largest body, in bytes.
    pub max_size: u64,
    /// Media types accepted (`image/*` matches a prefix); empty: any.
    pub types: Vec<String>,
    /// How long a presigned upload form may be used.
    pub presign_ttl: std::time::Duration,
}

impl UploadLimits {
    /// Whether `media_type` is accepted.
    pub fn allows(&self, media_type: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|t| match t.strip_suffix('*') {
                Some(prefix) => media_type.starts_with(prefix),
                None => t == media_type,
            })
    }
}

/// The body of an upload, as it arrives.
#[async_trait::async_trait]
pub trait BodySource: Send {
    /// The next piece; `None` at the end. An error means the client is gone or sent a
    /// broken body.
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, String>;
}

/// A local file read piece by piece (`assetgate assets add`): never whole in memory.
pub struct FileBody(tokio::fs::File);

impl FileBody {
    /// Opens `path`.
    pub async fn open(path: &std::path::Path) -> std::io::Result<FileBody> {
        tokio::fs::File::open(path).await.map(FileBody)
    }
}

#[async_trait::async_trait]
impl BodySource for FileBody {
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, String> {
        use tokio::io::AsyncReadExt;
        let mut piece = bytes::BytesMut::zeroed(256 * 1024);
        let n = self.0.read(&mut piece).await.map_err(|e| e.to_string())?;
        piece.truncate(n);
        Ok((n > 0).then(|| piece.freeze()))
    }
}

impl UploadError {
    /// The `result` label of `assetgate_asset_ingest_total` for this failure.
    pub fn label(&self) -> &'static str {
        match self {
            UploadError::TooLarge(_) => "too_large",
            UploadError::UnsupportedType(_) => "unsupported_type",
            UploadError::Refused(_) => "refused",
            UploadError::Body(_) => "aborted",
            UploadError::Store(_) => "failed",
        }
    }
}

/// Why a streamed upload was refused or failed; in every case nothing of it is left in the
/// backend or the database.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The body is longer than the limit.
    #[error("the body is over the upload limit of {0} bytes")]
    TooLarge(u64),
    /// The bytes are of a type the upload does not take.
    #[error("{0} is not a type this upload takes")]
    UnsupportedType(String),
    /// The owner or module cannot be placed (not one safe segment, empty).
    #[error("{0}")]
    Refused(String),
    /// The client went away or sent a broken body.
    #[error("the body could not be read: {0}")]
    Body(String),
    /// The backend or the database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Bytes gathered before the type is sniffed and the object started: enough for every
/// image header `imagesize` reads, EXIF included.
const HEAD: usize = 64 * 1024;

/// Streams `body` (named `name`) for `who` into the placement's backend, hashing as it goes:
/// at most one piece and the head are held in memory, whatever the size. A body of at most
/// [`HEAD`] bytes is written once, at its placed key; a longer one goes to a staging key
/// first and is moved to the placed key once the hash is known. Any failure removes what was
/// written.
pub async fn upload(
    store: &AssetStore,
    to: &Destinations<'_>,
    body: &mut dyn BodySource,
    name: &str,
    who: &Ownership,
    limits: &UploadLimits,
) -> Result<Added, UploadError> {
    for (field, value) in [("owner", &who.owner), ("module", &who.module)] {
        super::placement::check_segment(field, value)
            .map_err(|e| UploadError::Refused(e.to_string()))?;
    }
    let (head, ended, mime_type) = read_head(body, limits).await?;
    // The placement's backend, checked before a byte is written (a bad owner is refused
    // here); the key is rendered again once the hash is known.
    let placement = to.placements.choose(who.visibility, &who.module);
    let backend = placement.backend.as_str();
    to.place(who, &"0".repeat(64), &mime_type, name)
        .map_err(|e| UploadError::Refused(e.to_string()))?;
    let target = to.store(backend)?;
    if ended {
        // The whole body is in hand (at most [`HEAD`] bytes): hashed now and written once at
        // its placed key, with no staging copy to move.
        let hash = kit::hex::encode(&Sha256::digest(&head));
        let blob = blob_of(hash, backend, head.len() as u64, mime_type, &head);
        return place_staged(
            store,
            to,
            target.as_ref(),
            Staged::Whole(head),
            blob,
            name,
            who,
        )
        .await;
    }
    let staging = format!(".uploads/{}", kit::ids::random_hex128());
    let failed =
        |e: origins::OriginalError| StoreError::Ingest(format!("{name}: upload failed: {e}"));
    let mut object = target
        .begin_upload(&staging, &mime_type)
        .await
        .map_err(failed)?;
    object.write(&head).await.map_err(failed)?;
    let (hash, size) = hash_rest(body, &head, ended, limits, Some((object.as_mut(), name))).await?;
    object.finish().await.map_err(failed)?;
    let blob = blob_of(hash, backend, size, mime_type, &head);
    let placed = place_staged(
        store,
        to,
        target.as_ref(),
        Staged::At(&staging),
        blob,
        name,
        who,
    )
    .await;
    if placed.is_err() {
        // Whatever failed, the staging object must not stay behind (gone already is fine).
        let _ = target.delete_original(&staging).await;
    }
    placed
}

/// Reads the first [`HEAD`] bytes of `body` (fewer when it ends sooner: then `true`), and the
/// type sniffed from them, refusing a body over the size limit or of a type the limits do not
/// take.
async fn read_head(
    body: &mut dyn BodySource,
    limits: &UploadLimits,
) -> Result<(Vec<u8>, bool, String), UploadError> {
    let mut head = Vec::new();
    let mut ended = false;
    while head.len() < HEAD {
        match body.next_piece().await.map_err(UploadError::Body)? {
            Some(piece) => head.extend_from_slice(&piece),
            None => {
                ended = true;
                break;
            }
        }
        if head.len() as u64 > limits.max_size {
            return Err(UploadError::TooLarge(limits.max_size));
        }
    }
    let mime_type = sniffed_type(&head).to_string();
    if !limits.allows(&mime_type) {
        return Err(UploadError::UnsupportedType(mime_type));
    }
    Ok((head, ended, mime_type))
}

/// Reads `body` to its end after `head` (already read; `ended` when that was all), hashing
/// every byte and, when given, writing the pieces after the head to `object` (errors name the
/// upload); refuses a body
/// over the size limit. The hash and the whole length.
async fn hash_rest(
    body: &mut dyn BodySource,
    head: &[u8],
    mut ended: bool,
    limits: &UploadLimits,
    mut object: Option<(&mut dyn origins::upload::OriginalUpload, &str)>,
) -> Result<(String, u64), UploadError> {
    let mut hasher = Sha256::new();
    hasher.update(head);
    let mut size = head.len() as u64;
    while !ended {
        match body.next_piece().await.map_err(UploadError::Body)? {
            Some(piece) => {
                size += piece.len() as u64;
                if size > limits.max_size {
                    return Err(UploadError::TooLarge(limits.max_size));
                }
                hasher.update(&piece);
                if let Some((o, name)) = object.as_mut() {
                    o.write(&piece)
                        .await
                        .map_err(|e| StoreError::Ingest(format!("{name}: upload failed: {e}")))?;
                }
            }
            None => ended = true,
        }
    }
    Ok((kit::hex::encode(&hasher.finalize()), size))
}

/// The blob of `size` bytes hashing to `hash`, of `mime_type`, in `backend`, with the
/// dimensions its `head` tells (its key is filled in when it is placed).
fn blob_of(hash: String, backend: &str, size: u64, mime_type: String, head: &[u8]) -> Blob {
    let dims = imagesize::blob_size(head).ok();
    Blob {
        content_hash: hash,
        backend: backend.to_string(),
        storage_key: String::new(),
        size_bytes: size,
        mime_type,
        width: dims.map(|s| s.width as u64),
        height: dims.map(|s| s.height as u64),
    }
}

/// Reads an object already stored in `backend` (a presigned upload) to the end, hashing it
/// and checking it against `limits` as an upload is checked: its blob, to be placed.
pub(crate) async fn hash_stored(
    body: &mut dyn BodySource,
    backend: &str,
    limits: &UploadLimits,
) -> Result<Blob, UploadError> {
    let (head, ended, mime_type) = read_head(body, limits).await?;
    let (hash, size) = hash_rest(body, &head, ended, limits, None).await?;
    Ok(blob_of(hash, backend, size, mime_type, &head))
}

/// A stored object read back as a body (completing a presigned upload).
pub(crate) struct ReaderBody<'a>(pub &'a mut dyn origins::upload::OriginalReader);

#[async_trait::async_trait]
impl BodySource for ReaderBody<'_> {
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, String> {
        self.0.next_piece().await.map_err(|e| e.to_string())
    }
}

/// Where the bytes of an upload are before they are placed.
pub(crate) enum Staged<'a> {
    /// Written to this key of the target backend (moved to the placed key).
    At(&'a str),
    /// Whole in memory (written to the placed key).
    Whole(Vec<u8>),
}

/// Puts the staged upload of `blob` at its placed key (unless that object holds these bytes
/// already: then a staging copy is dropped) and records it; an object this created is
/// removed again when the rows cannot be written.
pub(crate) async fn place_staged(
    store: &AssetStore,
    to: &Destinations<'_>,
    target: &dyn OriginalStore,
    staged: Staged<'_>,
    mut blob: Blob,
    name: &str,
    who: &Ownership,
) -> Result<Added, UploadError> {
    let failed =
        |e: origins::OriginalError| StoreError::Ingest(format!("{name}: upload failed: {e}"));
    let hash = blob.content_hash.clone();
    let (_, key) = to.place(who, &hash, &blob.mime_type, name)?;
    let slot = store.object_slot(&blob.backend, &key, &hash).await?;
    let uploaded = slot != ObjectSlot::Same;
    match (staged, uploaded) {
        (Staged::At(staging), true) => target.move_original(staging, &key).await,
        (Staged::At(staging), false) => target.delete_original(staging).await,
        (Staged::Whole(bytes), true) => target.write_original(&key, bytes, &blob.mime_type).await,
        (Staged::Whole(_), false) => Ok(()),
    }
    .map_err(failed)?;
    blob.storage_key = key.clone();
    match record(store, blob, who, name).await {
        Ok((blob, asset)) => Ok(Added {
            hash,
            uploaded,
            asset,
            blob,
        }),
        Err(e) => {
            // Not recorded: an object this upload created must not stay behind.
            if slot == ObjectSlot::Free {
                let _ = target.delete_original(&key).await;
            }
            Err(e.into())
        }
    }
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
    fn upload_types_come_from_the_bytes_alone() {
        let png = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conf/sample/images/banner.png"
        ))
        .unwrap();
        assert_eq!(sniffed_type(&png), "image/png");
        assert_eq!(sniffed_type(b"%PDF-1.7 ..."), "application/pdf");
        assert_eq!(
            sniffed_type(b"\0\0\0\x18ftypmp42\0\0\0\0isommp42"),
            "video/mp4"
        );
        assert_eq!(
            sniffed_type(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"),
            "image/avif"
        );
        assert_eq!(
            sniffed_type("plain words, ünïcode\n".as_bytes()),
            "text/plain"
        );
        assert_eq!(sniffed_type(&"é".as_bytes()[..1]), "text/plain");
        assert_eq!(sniffed_type(b"<svg onload=alert(1)>"), "text/plain");
        assert_eq!(sniffed_type(b"\x7fELF\x02\x01"), "application/octet-stream");
        // A name says nothing to an upload; the operator's own files may still use it.
        assert_eq!(media_type(b"words", "a.css"), "text/css");
    }

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
