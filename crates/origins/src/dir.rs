//! A local directory served by the gateway itself (the quick start, sprites on local disk).
//!
//! The root is opened once; every file is opened relative to it with `openat2` and
//! `RESOLVE_BENEATH`, so the kernel refuses any resolution that leaves the root (`..`, already
//! refused by the path normaliser, and symlinks pointing outside, including absolute ones). Where
//! `openat2` is unavailable (kernels before 5.6, seccomp filters) the path is canonicalised and
//! checked against the root instead.
//!
//! Files are opened, checked and read synchronously on the worker thread, as nginx does: for a
//! local disk and the page cache that is a few microseconds, far less than a hop through a
//! blocking thread pool. Directory backends are meant for local disks, not network filesystems.
//!
//! Like nginx's `open_file_cache`, each worker thread keeps recently served files open with
//! their headers prepared ([`OPEN_FILES_PER_THREAD`] per backend), and checks each again (open,
//! stat, compare device, inode, size and modification time) at most every [`OPEN_FILE_VALID`].
//! A file replaced or removed is therefore served as it was for at most that long. Bodies are
//! read with `pread`, so requests sharing an open file never share a file position.

use super::error::OriginError;
use super::keys::object_key;
use super::origin::{Origin, OriginalStore, RouteView};
use super::spec::DirSpec;
use super::Ask;
use super::OriginalError;
use bytes::Bytes;
use http::HeaderValue;
use http::{header, Method};
use kit::client::ClientInfo;
use kit::conditional::{evaluate, if_range_allows, Precondition};
use kit::range::{decide, RangeDecision};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Bytes read from disk per body chunk (a 100 KiB file is one read and one write).
const CHUNK: u64 = 128 * 1024;
/// How long an open file is served before it is checked against the directory again.
pub const OPEN_FILE_VALID: Duration = Duration::from_secs(1);
/// Open files kept per worker thread and backend (the map is emptied when full).
pub const OPEN_FILES_PER_THREAD: usize = 256;

/// What a file answer needs, prepared once per open.
struct OpenFile {
    file: Arc<File>,
    len: u64,
    modified: SystemTime,
    /// Device and inode: a file replaced under the same name is a different file.
    identity: (u64, u64),
    etag: String,
    last_modified: HeaderValue,
    content_type: HeaderValue,
    checked: Instant,
    /// The backend's [`DirBackend::changes`] when it was opened: a change the gateway made
    /// itself (an upload, move or delete) invalidates it at once, not after
    /// [`OPEN_FILE_VALID`].
    generation: u64,
}

/// Open files of one worker thread: backend id, then key.
type OpenFiles = HashMap<usize, HashMap<Box<str>, Arc<OpenFile>>>;

thread_local! {
    static OPEN_FILES: RefCell<OpenFiles> = RefCell::new(HashMap::new());
}

/// Distinguishes backends in the per-thread cache (a reload builds new ones).
static NEXT_BACKEND_ID: AtomicUsize = AtomicUsize::new(0);

/// A directory backend.
pub struct DirBackend {
    /// Config name.
    pub name: String,
    spec: DirSpec,
    /// The root, opened once (`None` if it could not be opened: every request is then 404).
    root: Option<File>,
    /// Cleared when the kernel refuses `openat2`; the canonicalising fallback is used after.
    openat2: AtomicBool,
    /// This backend's slot in the per-thread open-file cache.
    id: usize,
    /// Counts the changes the gateway made to the files (writes, moves, deletes): open files
    /// from before a change are checked again before they are served.
    changes: Arc<AtomicU64>,
}

/// A file answer: the header, and the body to stream (none for HEAD, 304 and empty bodies).
pub struct FileAnswer {
    /// Status, validators, type, length and range headers.
    pub header: ResponseHeader,
    /// What to send after the header.
    pub body: Option<FileBody>,
}

/// The bytes of a file answer, read chunk by chunk.
pub struct FileBody {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
}

impl FileBody {
    /// The next chunk, `None` once everything was read. A file that shrank while being sent is
    /// an error (the client gets a short body and the connection closes).
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = self.remaining.min(CHUNK);
        // pread into spare capacity: no zeroing, and no shared file position.
        let mut buf = Vec::with_capacity(want as usize);
        let n = rustix::io::pread(
            &*self.file,
            rustix::buffer::spare_capacity(&mut buf),
            self.offset,
        )?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file truncated while serving",
            ));
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(Some(Bytes::from(buf)))
    }

    /// Whether this is the last chunk (nothing left after it).
    pub fn done(&self) -> bool {
        self.remaining == 0
    }
}

impl DirBackend {
    /// A backend for `spec.root` (already canonical).
    pub fn new(name: &str, spec: &DirSpec) -> DirBackend {
        let root = File::open(&spec.root)
            .map_err(|e| tracing::error!(backend = name, root = %spec.root.display(), error = %e, "cannot open directory"))
            .ok();
        DirBackend {
            name: name.to_string(),
            spec: spec.clone(),
            root,
            openat2: AtomicBool::new(true),
            id: NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed),
            changes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The served directory.
    pub fn root(&self) -> &std::path::Path {
        &self.spec.root
    }

    /// The file key a matched request asks for; a directory-style path is 404.
    pub fn object_key(
        &self,
        route: &(impl RouteView + ?Sized),
        path: &str,
    ) -> Result<String, OriginError> {
        let key = object_key(route, &self.spec.key_prefix, path);
        if key.is_empty() || key.ends_with('/') {
            return Err(OriginError::NotFound);
        }
        Ok(key)
    }

    /// Answers `req` for the file named by `key`: conditional requests (RFC 9110 §13), a single
    /// range (§14), HEAD. Missing files, directories and anything outside the root are 404.
    pub fn answer(&self, req: &RequestHeader, key: &str) -> Result<FileAnswer, OriginError> {
        let open = self.open_file(key)?;
        let (len, modified, etag) = (open.len, open.modified, open.etag.as_str());
        let mut resp = ResponseHeader::build(200, Some(8)).expect("valid status");
        let _ = resp.insert_header(header::ETAG, etag);
        let _ = resp.insert_header(header::LAST_MODIFIED, open.last_modified.clone());
        let _ = resp.insert_header(header::ACCEPT_RANGES, "bytes");
        match evaluate(&req.headers, etag, modified) {
            Precondition::Proceed => {}
            Precondition::Failed => return Err(OriginError::PreconditionFailed),
            Precondition::NotModified => {
                resp.set_status(304).expect("valid status");
                return Ok(FileAnswer {
                    header: resp,
                    body: None,
                });
            }
        }
        let range = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
        let decision = if if_range_allows(&req.headers, etag, modified) {
            decide(range, len)
        } else {
            RangeDecision::Full
        };
        let (start, length) = match decision {
            RangeDecision::Full => (0, len),
            RangeDecision::Partial { start, end } => {
                resp.set_status(206).expect("valid status");
                let _ =
                    resp.insert_header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
                (start, end - start + 1)
            }
            RangeDecision::Unsatisfiable => {
                return Err(OriginError::RangeNotSatisfiable { size: Some(len) })
            }
        };
        let _ = resp.insert_header(header::CONTENT_TYPE, open.content_type.clone());
        let _ = resp.insert_header(header::CONTENT_LENGTH, length);
        if req.method == Method::HEAD || length == 0 {
            return Ok(FileAnswer {
                header: resp,
                body: None,
            });
        }
        Ok(FileAnswer {
            header: resp,
            body: Some(FileBody {
                file: open.file.clone(),
                offset: start,
                remaining: length,
            }),
        })
    }

    /// Reads the whole file `key` (relative to the backend's `key_prefix`) for the variant
    /// builder; a file longer than `max` is refused before it is read.
    pub fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError> {
        use std::io::Read;
        let key = kit::path::join_key(&[&self.spec.key_prefix, key]);
        let file = self.open(&key).map_err(|_| OriginalError::Missing)?;
        let meta = file
            .metadata()
            .map_err(|e| OriginalError::Failed(e.to_string()))?;
        if !meta.is_file() {
            return Err(OriginalError::Missing);
        }
        if meta.len() > max {
            return Err(OriginalError::TooLarge(meta.len()));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| OriginalError::Failed(e.to_string()))?;
        if bytes.len() as u64 > max {
            return Err(OriginalError::TooLarge(bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// The folder `key_prefix` names under the root (originals' keys are relative to it).
    pub(crate) fn prefix_dir(&self) -> PathBuf {
        let mut dir = self.spec.root.clone();
        dir.extend(self.spec.key_prefix.split('/').filter(|s| !s.is_empty()));
        dir
    }

    /// The key (relative to `key_prefix`) of the file at `path`, when it lies inside.
    pub fn key_of_local_file(&self, path: &std::path::Path) -> Option<String> {
        let real = std::fs::canonicalize(path).ok()?;
        let rel = real.strip_prefix(self.prefix_dir()).ok()?;
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()?
            .join("/");
        (!key.is_empty()).then_some(key)
    }

    /// The path of the original `key` (relative to `key_prefix`; plain segments only, so it
    /// can never leave the prefix).
    pub(crate) fn original_path(&self, key: &str) -> Result<PathBuf, OriginalError> {
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(OriginalError::Failed(format!(
                "\"{key}\" is not a plain key"
            )));
        }
        let mut path = self.prefix_dir();
        path.extend(key.split('/'));
        Ok(path)
    }

    /// Stores `bytes` as the file `key` (relative to `key_prefix`; plain segments only),
    /// creating folders; written to a temporary file of its own and renamed, so a reader never
    /// sees half and concurrent writers of one key never share a temporary file.
    pub fn write_original(&self, key: &str, bytes: &[u8]) -> Result<(), OriginalError> {
        let path = self.original_path(key)?;
        let failed = |e: std::io::Error| OriginalError::Failed(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let temp = super::upload::temp_beside(&path);
        std::fs::write(&temp, bytes).map_err(failed)?;
        let renamed = std::fs::rename(&temp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            failed(e)
        });
        self.changed();
        renamed
    }

    /// Notes a change the gateway made to the files (see [`OpenFile::generation`]).
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// The change counter, for an upload that finishes later.
    pub(crate) fn change_counter(&self) -> Arc<AtomicU64> {
        self.changes.clone()
    }

    /// The open file for `key` from this thread's cache, opened (or checked again once
    /// [`OPEN_FILE_VALID`] has passed) when needed. Directories and other non-files are 404.
    fn open_file(&self, key: &str) -> Result<Arc<OpenFile>, OriginError> {
        let cached = OPEN_FILES.with(|c| {
            c.borrow()
                .get(&self.id)
                .and_then(|files| files.get(key).cloned())
        });
        let generation = self.changes.load(Ordering::Acquire);
        if let Some(open) = &cached {
            if open.checked.elapsed() < OPEN_FILE_VALID && open.generation == generation {
                return Ok(open.clone());
            }
        }
        let opened = self.open(key).and_then(|f| prepare(f, key)).map(|mut f| {
            f.generation = generation;
            f
        });
        let fresh = match (opened, cached) {
            // Unchanged: keep the descriptor in use; the new one closes here.
            (Ok(new), Some(old)) if new.same_file_as(&old) => Arc::new(OpenFile {
                file: old.file.clone(),
                ..new
            }),
            (Ok(new), _) => Arc::new(new),
            (Err(e), _) => {
                OPEN_FILES.with(|c| {
                    if let Some(files) = c.borrow_mut().get_mut(&self.id) {
                        files.remove(key);
                    }
                });
                return Err(e);
            }
        };
        OPEN_FILES.with(|c| {
            let mut cache = c.borrow_mut();
            let files = cache.entry(self.id).or_default();
            if files.len() >= OPEN_FILES_PER_THREAD && !files.contains_key(key) {
                files.clear();
            }
            files.insert(key.into(), fresh.clone());
        });
        Ok(fresh)
    }

    /// Opens `key` for reading; never outside the root.
    fn open(&self, key: &str) -> Result<File, OriginError> {
        let root = self.root.as_ref().ok_or(OriginError::NotFound)?;
        if key.split('/').any(|s| s == "." || s == "..") {
            return Err(OriginError::NotFound);
        }
        if self.openat2.load(Ordering::Relaxed) {
            // NONBLOCK: opening a FIFO planted in the tree must not stall the worker.
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(root, key, flags, Mode::empty(), resolve) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
                    tracing::info!(backend = %self.name, "openat2 unavailable; canonicalising paths instead");
                    self.openat2.store(false, Ordering::Relaxed);
                }
                Err(_) => return Err(OriginError::NotFound),
            }
        }
        self.open_canonical(key)
    }

    /// The fallback: canonicalise, check the result is under the root, open.
    fn open_canonical(&self, key: &str) -> Result<File, OriginError> {
        let mut path: PathBuf = self.spec.root.clone();
        path.extend(key.split('/').filter(|s| !s.is_empty()));
        let real = std::fs::canonicalize(&path).map_err(|_| OriginError::NotFound)?;
        if !real.starts_with(&self.spec.root) {
            return Err(OriginError::NotFound);
        }
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32)
            .open(&real)
            .map_err(|_| OriginError::NotFound)
    }
}

/// Checks that `file` is a regular file and prepares its headers.
fn prepare(file: File, key: &str) -> Result<OpenFile, OriginError> {
    let meta = file.metadata().map_err(|_| OriginError::NotFound)?;
    if !meta.is_file() {
        return Err(OriginError::NotFound);
    }
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let content_type = mime_guess::from_path(key).first_or_octet_stream();
    Ok(OpenFile {
        len: meta.len(),
        modified,
        identity: (meta.dev(), meta.ino()),
        etag: entity_tag(meta.len(), modified),
        last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified))
            .map_err(|_| OriginError::Internal)?,
        content_type: HeaderValue::from_str(content_type.essence_str())
            .map_err(|_| OriginError::Internal)?,
        file: Arc::new(file),
        checked: Instant::now(),
        generation: 0,
    })
}

impl OpenFile {
    /// Same file, same size, same modification time: what was prepared still holds.
    fn same_file_as(&self, other: &OpenFile) -> bool {
        self.identity == other.identity && self.len == other.len && self.modified == other.modified
    }
}

/// Strong entity tag from size and modification time (nanoseconds).
fn entity_tag(len: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{len:x}-{nanos:x}\"")
}

/// A directory as one backend kind: the gateway answers its files itself on an uncached
/// route, and through the in-process origin on a cached one (so they are stored like any
/// backend's answer); originals are files under the key prefix.
#[async_trait::async_trait]
impl<R: RouteView + ?Sized> Origin<R> for DirBackend {
    fn kind(&self) -> &'static str {
        "dir"
    }

    fn ask(
        &self,
        route: &R,
        _host: &str,
        path: &str,
        _query: Option<&str>,
        _accept: Option<&str>,
    ) -> Result<Ask, OriginError> {
        self.object_key(route, path).map(Ask::Object)
    }

    async fn peer(
        &self,
        _attempt: usize,
        _tried: &[usize],
        _hash: Option<u64>,
    ) -> Result<(HttpPeer, Option<usize>), OriginError> {
        Ok((super::local::peer()?, None))
    }

    async fn prepare(
        &self,
        name: &str,
        req: &mut RequestHeader,
        ask: &Ask,
        _client: &ClientInfo,
    ) -> Result<(), OriginError> {
        let Ask::Object(key) = ask else {
            return Err(OriginError::Internal);
        };
        *req = super::local::request(req, name, key)?;
        Ok(())
    }

    fn member_health(&self) -> Vec<(String, bool)> {
        vec![(self.root().display().to_string(), self.root().is_dir())]
    }

    fn answer_here(
        &self,
        req: &RequestHeader,
        ask: &Ask,
    ) -> Option<Result<FileAnswer, OriginError>> {
        match ask {
            Ask::Object(key) => Some(self.answer(req, key)),
            _ => Some(Err(OriginError::Internal)),
        }
    }

    fn originals(&self) -> Option<&dyn OriginalStore> {
        Some(self)
    }

    fn local(&self) -> Option<&DirBackend> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl OriginalStore for DirBackend {
    async fn read_original(&self, key: &str, max: u64) -> Result<Vec<u8>, OriginalError> {
        DirBackend::read_original(self, key, max)
    }

    async fn write_original(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), OriginalError> {
        DirBackend::write_original(self, key, &bytes)
    }

    async fn begin_upload(
        &self,
        key: &str,
        _content_type: &str,
    ) -> Result<Box<dyn crate::upload::OriginalUpload>, OriginalError> {
        Ok(Box::new(DirBackend::begin_upload(self, key).await?))
    }

    async fn open_original(
        &self,
        key: &str,
    ) -> Result<Box<dyn crate::upload::OriginalReader>, OriginalError> {
        Ok(Box::new(DirBackend::open_original(self, key).await?))
    }

    async fn move_original(&self, from: &str, to: &str) -> Result<(), OriginalError> {
        DirBackend::move_original(self, from, to).await
    }

    async fn delete_original(&self, key: &str) -> Result<(), OriginalError> {
        DirBackend::delete_original(self, key).await
    }

    async fn list_originals(
        &self,
        after: Option<&str>,
    ) -> Result<crate::listing::ListPage, OriginalError> {
        DirBackend::list_originals(self, after).await
    }

    fn key_of_local_file(&self, path: &std::path::Path) -> Option<String> {
        DirBackend::key_of_local_file(self, path)
    }
}
