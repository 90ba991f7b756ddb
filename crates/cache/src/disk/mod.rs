//! The disk tier: one file per entry under the tier's folder, bounded by bytes, least recently
//! used entries evicted first.
//!
//! - **Atomic:** an entry is written to `tmp/` and renamed into place when complete; a reader
//!   sees a whole entry or none. A write that fails or is abandoned leaves nothing behind.
//! - **Checked:** each file carries its lengths and CRC-32s of its header, its metadata and
//!   every body block. A lookup checks the file's length against its header and the metadata's
//!   checksum before anything is served, and a body of one block (up to [`BLOCK`] bytes) is
//!   verified whole; longer bodies are verified block by block before each block is sent. A
//!   torn or corrupted file is removed and counted, and the request goes to the next tier or
//!   the backend: a damaged byte is never served.
//! - **Restart:** entries are found by name (`aa/<sha256 hex>`), so a restarted gateway serves
//!   them at once; its accounting (bytes, entries, last use) and its part of the purge index
//!   (each file's labels) are rebuilt by a background scan of the folder; a purge made while
//!   the scan runs is applied again to what it read back. Temporary files an earlier process
//!   left are removed when the tier opens.
//! - **Full disk:** the tier stops admitting when the filesystem has less than `min_free`
//!   left, or for a while after a write failed for lack of space; requests are still served.
//!
//! The file layout is in `format.rs`, the accounting in `index.rs`. Reads and writes are
//! plain blocking file calls on the worker thread, as for `dir` backends: on a local disk
//! they are page-cache copies.

mod format;
mod index;

use super::index::PurgeIndex;
use super::key::EntryKey;
use super::labels::Labels;
use super::metrics::TierMetrics;
use super::tier::{Found, Tier, TierBody, TierName, TierWriter};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
pub use format::BLOCK;
use format::{crc, file_len, meta_capacity, Head, HEADER};
use index::Index;
use pingora::cache::CacheMeta;
use pingora::{Error, ErrorType, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the tier stops admitting after a write failed for lack of space.
const FULL_PAUSE: Duration = Duration::from_secs(10);
/// Evictions bring the tier down to this share of its size, so they run in batches.
const EVICT_TO: f64 = 0.9;

/// `[cache.disk]` as the tier uses it.
#[derive(Debug, Clone)]
pub struct DiskSettings {
    /// The tier's folder.
    pub path: PathBuf,
    /// Bytes the tier may hold (files as stored).
    pub size: u64,
    /// Largest body stored.
    pub max_entry: u64,
    /// Stop admitting when the filesystem has less free space than this.
    pub min_free: u64,
}

/// The disk tier.
pub struct DiskTier(Arc<Store>);

struct Store {
    root: PathBuf,
    size: u64,
    max_entry: u64,
    min_free: u64,
    index: Mutex<Index>,
    /// Unix seconds until which nothing is admitted (a write hit a full disk).
    paused_until: AtomicU64,
    /// Names temporary files uniquely within this process.
    serial: AtomicU64,
    metrics: TierMetrics,
    /// Where this tier's entries are recorded for purges.
    purge_index: Arc<PurgeIndex>,
}

fn storage_error(what: &'static str, e: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("disk tier: {what}: {e}"))
}

impl DiskTier {
    /// Opens (creating) the tier's folder and starts the background scan that rebuilds its
    /// accounting and its entries in `purge_index` from the files already there.
    pub fn open(
        settings: &DiskSettings,
        metrics: TierMetrics,
        purge_index: Arc<PurgeIndex>,
    ) -> io::Result<DiskTier> {
        fs::create_dir_all(settings.path.join("tmp"))?;
        let store = Arc::new(Store {
            root: settings.path.clone(),
            size: settings.size,
            max_entry: settings.max_entry,
            min_free: settings.min_free,
            index: Mutex::new(Index::default()),
            paused_until: AtomicU64::new(0),
            serial: AtomicU64::new(0),
            metrics,
            purge_index,
        });
        store.clear_tmp();
        store.purge_index.begin_rebuild();
        let scanner = store.clone();
        std::thread::Builder::new()
            .name("disk-cache-scan".into())
            .spawn(move || scanner.scan())?;
        Ok(DiskTier(store))
    }

    /// Rebuilds the accounting now (tests; `open` does it in the background).
    #[cfg(test)]
    pub fn scan_now(&self) {
        self.0.purge_index.begin_rebuild();
        self.0.scan();
    }

    /// Removes every entry file (a purge of everything, or a gateway that may have missed
    /// purges); the number removed.
    pub fn clear(&self) -> usize {
        let store = &self.0;
        let mut removed = 0;
        for (key, path) in store.entry_files() {
            if fs::remove_file(&path).is_ok() {
                removed += 1;
            }
            store.purge_index.forget(&key, TierName::Disk);
            let mut index = store.lock();
            index.forget(&key);
            store.publish(&index);
        }
        removed
    }

    /// Bytes the tier accounts for.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.0.lock().bytes
    }
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path_of(&self, key: &EntryKey) -> PathBuf {
        let hex = key.hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Removes temporary files left by an earlier process. Runs in `open`, before this
    /// process writes any: the background scan must never touch a write in progress.
    fn clear_tmp(&self) {
        if let Ok(tmp) = fs::read_dir(self.root.join("tmp")) {
            for f in tmp.flatten() {
                let _ = fs::remove_file(f.path());
            }
        }
    }

    /// Every entry file in the folder, with its key.
    fn entry_files(&self) -> Vec<(EntryKey, PathBuf)> {
        let Ok(dirs) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for dir in dirs.flatten() {
            let name = dir.file_name();
            if name.len() != 2 || !dir.path().is_dir() {
                continue;
            }
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Some(key) = parse_key(&f.file_name()) {
                    out.push((key, f.path()));
                }
            }
        }
        out
    }

    /// The labels stored in an entry file; `None` when they cannot be read intact.
    fn read_labels(path: &std::path::Path) -> Option<Labels> {
        let file = File::open(path).ok()?;
        let mut raw = [0u8; HEADER];
        file.read_exact_at(&mut raw, 0).ok()?;
        let head = Head::decode(&raw)?;
        // The file must be as long as its header says before anything it sizes is read.
        if file.metadata().ok()?.len() != file_len(head.meta_capacity as u64, head.body_len) {
            return None;
        }
        let mut labels = vec![0u8; head.labels_len as usize];
        file.read_exact_at(&mut labels, HEADER as u64).ok()?;
        if crc(&[&labels]) != head.labels_crc {
            return None;
        }
        Labels::decode(&labels)
    }

    /// Accounts for every entry file found and records its labels in the purge index, then
    /// applies the purges made meanwhile to what was read back.
    fn scan(&self) {
        let mut found: Vec<(SystemTime, EntryKey, u64)> = Vec::new();
        for (key, path) in self.entry_files() {
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            match Self::read_labels(&path) {
                Some(labels) => self
                    .purge_index
                    .record(key, TierName::Disk, &Arc::new(labels)),
                None => {
                    self.drop_corrupt(&key, "unreadable header or labels");
                    continue;
                }
            }
            let used = meta.modified().unwrap_or(UNIX_EPOCH);
            found.push((used, key, meta.len()));
        }
        // Oldest first, so the ones written or used last are the last evicted.
        found.sort_unstable_by_key(|(used, _, _)| *used);
        {
            let mut index = self.lock();
            for (_, key, bytes) in found {
                if !index.entries.contains_key(&key) {
                    index.touch(key, Some(bytes));
                }
            }
            self.publish(&index);
        }
        for selector in self.purge_index.finish_rebuild() {
            for key in self.purge_index.select(&selector, TierName::Disk) {
                let _ = self.remove_entry(&key);
            }
        }
        self.evict();
    }

    /// Removes an entry's file, its accounting and its index entry; whether the file was
    /// there.
    fn remove_entry(&self, key: &EntryKey) -> io::Result<bool> {
        let removed = match fs::remove_file(self.path_of(key)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        self.purge_index.forget(key, TierName::Disk);
        let mut index = self.lock();
        index.forget(key);
        self.publish(&index);
        Ok(removed)
    }

    fn publish(&self, index: &Index) {
        self.metrics.bytes.set(index.bytes as i64);
        self.metrics.entries.set(index.entries.len() as i64);
    }

    /// Evicts least recently used entries until the tier is back under [`EVICT_TO`] of its
    /// size, when it is over its size.
    fn evict(&self) {
        let victims = {
            let index = self.lock();
            if index.bytes <= self.size {
                return;
            }
            index.victims((self.size as f64 * EVICT_TO) as u64)
        };
        for key in victims {
            let _ = fs::remove_file(self.path_of(&key));
            self.purge_index.forget(&key, TierName::Disk);
            let mut index = self.lock();
            if index.forget(&key).is_some() {
                self.metrics.evictions.inc();
            }
            self.publish(&index);
        }
    }

    /// Removes a damaged entry and counts it.
    fn drop_corrupt(&self, key: &EntryKey, why: &str) {
        tracing::warn!(key = %key.hex(), why, "disk cache entry damaged; removed");
        self.metrics.corrupt.inc();
        let _ = self.remove_entry(key);
    }

    fn admitting(&self) -> bool {
        if kit::time::unix_secs() < self.paused_until.load(Ordering::Relaxed) {
            return false;
        }
        match rustix::fs::statvfs(&self.root) {
            Ok(s) => s.f_bavail.saturating_mul(s.f_frsize) >= self.min_free,
            Err(_) => false,
        }
    }

    fn pause(&self) {
        self.paused_until.store(
            kit::time::unix_secs() + FULL_PAUSE.as_secs(),
            Ordering::Relaxed,
        );
    }

    /// The intact entry under `key`, if there is one; a damaged one is removed on the way.
    fn found(self: &Arc<Self>, key: &EntryKey) -> Option<Found> {
        let (file, head, meta) = match self.open_entry(key) {
            Ok(opened) => opened?,
            Err(why) => {
                self.drop_corrupt(key, why);
                return None;
            }
        };
        let mut body = DiskBody {
            file,
            key: *key,
            store: self.clone(),
            start: head.body_start(),
            len: head.body_len,
            next_block: 0,
            skip: 0,
            remaining: head.body_len,
            first: None,
        };
        if head.body_len as usize <= BLOCK {
            // A body of one block is checked whole before anything is sent.
            body.first = body.read_block().ok()?;
        }
        self.lock().touch(*key, None);
        Some(Found {
            meta,
            body: Box::new(body),
        })
    }

    /// Opens and checks an entry: lengths, header and metadata checksums, and (for a body of
    /// one block) the body. `Ok(None)`: no such entry; `Err`: damaged (already removed).
    fn open_entry(&self, key: &EntryKey) -> Result<Option<(File, Head, CacheMeta)>, &'static str> {
        let mut file = match File::open(self.path_of(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(_) => return Err("cannot open"),
        };
        let len = file.metadata().map_err(|_| "cannot stat")?.len();
        let mut raw = [0u8; HEADER];
        file.read_exact(&mut raw).map_err(|_| "short header")?;
        let head = Head::decode(&raw).ok_or("bad header")?;
        if len != file_len(head.meta_capacity as u64, head.body_len) {
            return Err("length does not match its header");
        }
        file.seek(SeekFrom::Start(head.meta_start()))
            .map_err(|_| "short labels")?;
        let mut meta = vec![0u8; (head.internal_len + head.header_len) as usize];
        file.read_exact(&mut meta).map_err(|_| "short metadata")?;
        if crc(&[&meta]) != head.meta_crc {
            return Err("metadata checksum");
        }
        let (internal, header) = meta.split_at(head.internal_len as usize);
        let meta = CacheMeta::deserialize(internal, header).map_err(|_| "metadata unreadable")?;
        Ok(Some((file, head, meta)))
    }
}

/// An entry file's key, from its name.
fn parse_key(name: &std::ffi::OsStr) -> Option<EntryKey> {
    EntryKey::from_hex(name.to_str()?)
}

#[async_trait]
impl Tier for DiskTier {
    fn name(&self) -> TierName {
        TierName::Disk
    }

    fn metrics(&self) -> &TierMetrics {
        &self.0.metrics
    }

    async fn lookup(&self, key: &EntryKey) -> Result<Option<Found>> {
        let found = self.0.found(key);
        self.0.metrics.looked_up(found.is_some());
        Ok(found)
    }

    async fn writer(
        &self,
        key: EntryKey,
        meta: &CacheMeta,
        size: Option<usize>,
        labels: &Arc<Labels>,
    ) -> Result<Option<Box<dyn TierWriter>>> {
        let store = &self.0;
        if size.is_some_and(|s| s as u64 > store.max_entry) || !store.admitting() {
            return Ok(None);
        }
        let (internal, header) = meta.serialize()?;
        let serial = store.serial.fetch_add(1, Ordering::Relaxed);
        let tmp =
            store
                .root
                .join("tmp")
                .join(format!("{}.{}.{serial}", key.hex(), std::process::id()));
        let encoded = labels.encode();
        let capacity = meta_capacity(encoded.len() + internal.len() + header.len());
        let head = Head {
            internal_len: internal.len() as u32,
            header_len: header.len() as u32,
            meta_capacity: capacity,
            body_len: 0,
            meta_crc: crc(&[&internal, &header]),
            labels_len: encoded.len() as u32,
            labels_crc: crc(&[&encoded]),
        };
        let opened = (|| -> io::Result<File> {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let mut region = Vec::with_capacity(HEADER + capacity as usize);
            region.extend_from_slice(&head.encode());
            region.extend_from_slice(&encoded);
            region.extend_from_slice(&internal);
            region.extend_from_slice(&header);
            region.resize(HEADER + capacity as usize, 0);
            file.write_all(&region)?;
            Ok(file)
        })();
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                if e.raw_os_error() == Some(28) {
                    store.pause();
                }
                let _ = fs::remove_file(&tmp);
                return Err(storage_error("cannot start an entry", e));
            }
        };
        Ok(Some(Box::new(DiskWriter {
            store: store.clone(),
            key,
            labels: labels.clone(),
            tmp,
            file: Some(file),
            head,
            block: BytesMut::with_capacity(BLOCK.min(size.unwrap_or(BLOCK).max(1))),
            body_len: 0,
        })))
    }

    async fn update_meta(&self, key: &EntryKey, meta: &CacheMeta) -> Result<bool> {
        let store = &self.0;
        let (file, head, _) = match store.open_entry(key) {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(false),
            Err(why) => {
                store.drop_corrupt(key, why);
                return Ok(false);
            }
        };
        drop(file);
        let (internal, header) = meta.serialize()?;
        if (head.labels_len as usize) + internal.len() + header.len() > head.meta_capacity as usize
        {
            // No room in place: drop it; the next request stores a whole new entry.
            let _ = self.remove(key).await;
            return Ok(false);
        }
        let new_head = Head {
            internal_len: internal.len() as u32,
            header_len: header.len() as u32,
            meta_crc: crc(&[&internal, &header]),
            ..head
        };
        // Rewritten in place, metadata first: a torn rewrite fails its checksums and the
        // entry is dropped at its next lookup, never misread.
        let written = (|| -> io::Result<()> {
            let file = OpenOptions::new().write(true).open(store.path_of(key))?;
            let mut region = internal;
            region.extend_from_slice(&header);
            file.write_all_at(&region, head.meta_start())?;
            file.write_all_at(&new_head.encode(), 0)
        })();
        written.map_err(|e| storage_error("cannot rewrite metadata", e))?;
        Ok(true)
    }

    async fn remove(&self, key: &EntryKey) -> Result<bool> {
        self.0
            .remove_entry(key)
            .map_err(|e| storage_error("cannot remove an entry", e))
    }
}

/// A disk entry's body, verified block by block.
struct DiskBody {
    file: File,
    key: EntryKey,
    store: Arc<Store>,
    /// Offset of the first block.
    start: u64,
    /// Body length.
    len: u64,
    /// The next block to read.
    next_block: u64,
    /// Bytes of the next block to skip (a seek into its middle).
    skip: usize,
    /// Body bytes still to hand out.
    remaining: u64,
    /// The first block, already read and verified at lookup.
    first: Option<Bytes>,
}

impl DiskBody {
    /// Reads and verifies the next block; a damaged one removes the entry.
    fn read_block(&mut self) -> Result<Option<Bytes>> {
        let offset = self.next_block * BLOCK as u64;
        if offset >= self.len {
            return Ok(None);
        }
        let data_len = (self.len - offset).min(BLOCK as u64) as usize;
        let at = self.start + self.next_block * (BLOCK as u64 + 4);
        let mut buf = vec![0u8; data_len + 4];
        let read = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut buf));
        let intact = read.is_ok() && {
            let (data, sum) = buf.split_at(data_len);
            crc(&[data]).to_le_bytes() == sum
        };
        if !intact {
            self.store.drop_corrupt(&self.key, "body block checksum");
            return Err(storage_error("damaged body block", "removed"));
        }
        buf.truncate(data_len);
        self.next_block += 1;
        Ok(Some(Bytes::from(buf)))
    }
}

#[async_trait]
impl TierBody for DiskBody {
    async fn read(&mut self) -> Result<Option<Bytes>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let block = match self.first.take() {
            Some(b) => Some(b),
            None => self.read_block()?,
        };
        let Some(mut block) = block else {
            return Ok(None);
        };
        let skip = std::mem::take(&mut self.skip).min(block.len());
        block = block.slice(skip..);
        if block.len() as u64 > self.remaining {
            block.truncate(self.remaining as usize);
        }
        self.remaining -= block.len() as u64;
        Ok(Some(block))
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let (start, end) = super::tier::seek_range(start, end, self.len)
            .ok_or_else(|| storage_error("seek", "start past the end"))?;
        let block = start / BLOCK as u64;
        // The first block read at lookup is kept when the range starts in it.
        if block != 0 {
            self.first = None;
        }
        if self.first.is_none() {
            self.next_block = block;
        }
        self.skip = (start - block * BLOCK as u64) as usize;
        self.remaining = end - start;
        Ok(())
    }
}

/// A new disk entry, written to `tmp/` and renamed into place at commit.
struct DiskWriter {
    store: Arc<Store>,
    key: EntryKey,
    labels: Arc<Labels>,
    tmp: PathBuf,
    file: Option<File>,
    head: Head,
    block: BytesMut,
    body_len: u64,
}

impl DiskWriter {
    fn flush_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let sum = crc(&[&self.block]);
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        file.write_all(&self.block)?;
        file.write_all(&sum.to_le_bytes())?;
        self.block.clear();
        Ok(())
    }

    fn failed(&mut self, what: &'static str, e: io::Error) -> Box<Error> {
        if e.raw_os_error() == Some(28) {
            self.store.pause();
        }
        self.file = None;
        let _ = fs::remove_file(&self.tmp);
        storage_error(what, e)
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[async_trait]
impl TierWriter for DiskWriter {
    async fn write(&mut self, mut data: Bytes) -> Result<()> {
        if self.body_len + data.len() as u64 > self.store.max_entry {
            let e = io::Error::other("larger than the disk tier's max_entry");
            return Err(self.failed("entry too large", e));
        }
        self.body_len += data.len() as u64;
        while !data.is_empty() {
            let room = BLOCK - self.block.len();
            let take = room.min(data.len());
            self.block.extend_from_slice(&data.split_to(take));
            if self.block.len() == BLOCK {
                if let Err(e) = self.flush_block() {
                    return Err(self.failed("cannot write", e));
                }
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<usize> {
        if let Err(e) = self.flush_block() {
            return Err(self.failed("cannot write", e));
        }
        let head = Head {
            body_len: self.body_len,
            ..self.head
        };
        let path = self.store.path_of(&self.key);
        let finished = (|| -> io::Result<()> {
            let file = self.file.as_ref().ok_or(io::ErrorKind::BrokenPipe)?;
            file.write_all_at(&head.encode(), 0)?;
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::rename(&self.tmp, &path)
        })();
        if let Err(e) = finished {
            return Err(self.failed("cannot finish", e));
        }
        self.file = None;
        let bytes = file_len(head.meta_capacity as u64, head.body_len);
        self.store
            .purge_index
            .record(self.key, TierName::Disk, &self.labels);
        {
            let mut index = self.store.lock();
            index.touch(self.key, Some(bytes));
            self.store.publish(&index);
        }
        self.store.metrics.writes.inc();
        self.store.evict();
        Ok(self.body_len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CacheMetrics;
    use pingora::http::ResponseHeader;
    use std::path::Path;

    fn settings(dir: &Path, size: u64) -> DiskSettings {
        DiskSettings {
            path: dir.to_path_buf(),
            size,
            max_entry: size,
            min_free: 0,
        }
    }

    fn tier(dir: &Path, size: u64) -> DiskTier {
        let t = DiskTier::open(
            &settings(dir, size),
            CacheMetrics::unregistered().tier("disk-test"),
            Arc::default(),
        )
        .unwrap();
        t.scan_now();
        t
    }

    fn key(n: u64) -> EntryKey {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&n.to_be_bytes());
        EntryKey(k)
    }

    fn meta(etag: &str) -> CacheMeta {
        let now = SystemTime::now();
        let mut header = ResponseHeader::build(200, None).unwrap();
        header.insert_header("etag", etag).unwrap();
        CacheMeta::new(now + Duration::from_secs(60), now, 0, 0, header)
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    async fn put(t: &DiskTier, k: EntryKey, data: &[u8]) {
        let mut w = t
            .writer(k, &meta("\"v1\""), Some(data.len()), &Arc::default())
            .await
            .unwrap()
            .unwrap();
        for chunk in data.chunks(10_000) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        w.commit().await.unwrap();
    }

    async fn read_all(t: &DiskTier, k: EntryKey) -> Option<Result<Vec<u8>>> {
        let mut found = t.lookup(&k).await.unwrap()?;
        let mut out = Vec::new();
        loop {
            match found.body.read().await {
                Ok(Some(b)) => out.extend_from_slice(&b),
                Ok(None) => return Some(Ok(out)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn flip_byte(path: &Path, from_end: u64) {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let at = f.metadata().unwrap().len() - from_end;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x55], at).unwrap();
    }

    async fn put_labelled(t: &DiskTier, k: EntryKey, url: &str, tag: &str) {
        let labels = Arc::new(Labels {
            url: url.into(),
            tags: vec![tag.into()],
        });
        let mut w = t
            .writer(k, &meta("\"v1\""), Some(3), &labels)
            .await
            .unwrap()
            .unwrap();
        w.write(Bytes::from_static(b"abc")).await.unwrap();
        w.commit().await.unwrap();
    }

    /// A restarted tier indexes its files again, and a purge made before the scan read them
    /// back still removes them.
    #[tokio::test]
    async fn labels_survive_a_restart_and_purges_during_the_scan_apply() {
        use crate::purge::Selector;
        let dir = tempfile::tempdir().unwrap();
        {
            let t = tier(dir.path(), 64 << 20);
            put_labelled(&t, key(1), "h/a/1", "red").await;
            put_labelled(&t, key(2), "h/b/2", "blue").await;
        }
        let index: Arc<PurgeIndex> = Arc::default();
        let s = settings(dir.path(), 64 << 20);
        let t = DiskTier::open(
            &s,
            CacheMetrics::unregistered().tier("disk-test"),
            index.clone(),
        )
        .unwrap();
        // A purge that arrives before the scan has read the entries back (the background
        // scan `open` started may have finished already: start a rebuild again).
        index.begin_rebuild();
        let _ = index.select(&Selector::Tag("red".into()), TierName::Disk);
        t.0.scan();
        assert!(
            t.lookup(&key(1)).await.unwrap().is_none(),
            "purged entry kept"
        );
        assert!(t.lookup(&key(2)).await.unwrap().is_some());
        assert_eq!(
            index.select(&Selector::Prefix("h/b/".into()), TierName::Disk),
            [key(2)]
        );
        assert_eq!(t.clear(), 1);
        assert!(t.lookup(&key(2)).await.unwrap().is_none());
        assert!(index.is_empty());
    }

    /// The start-up scan drops a truncated file instead of indexing it.
    #[tokio::test]
    async fn the_scan_drops_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = tier(dir.path(), 64 << 20);
            put_labelled(&t, key(1), "h/a/1", "red").await;
            let path = t.0.path_of(&key(1));
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(f.metadata().unwrap().len() - 1).unwrap();
        }
        let index: Arc<PurgeIndex> = Arc::default();
        let s = settings(dir.path(), 64 << 20);
        let t = DiskTier::open(
            &s,
            CacheMetrics::unregistered().tier("disk-test"),
            index.clone(),
        )
        .unwrap();
        t.0.scan();
        assert!(!t.0.path_of(&key(1)).exists());
        assert!(index.is_empty());
    }

    #[tokio::test]
    async fn entries_round_trip_and_seek_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 64 << 20);
        for (n, len) in [(1u64, 0usize), (2, 1000), (3, BLOCK), (4, 3 * BLOCK + 17)] {
            let data = body(len);
            put(&t, key(n), &data).await;
            assert_eq!(read_all(&t, key(n)).await.unwrap().unwrap(), data, "{len}");
        }
        let found = t.lookup(&key(2)).await.unwrap().unwrap();
        assert_eq!(found.meta.headers()["etag"], "\"v1\"");
        let mut found = t.lookup(&key(4)).await.unwrap().unwrap();
        let (start, end) = (BLOCK - 5, 2 * BLOCK + 10);
        found.body.seek(start, Some(end)).unwrap();
        let mut got = Vec::new();
        while let Some(b) = found.body.read().await.unwrap() {
            got.extend_from_slice(&b);
        }
        assert_eq!(got, body(3 * BLOCK + 17)[start..end]);
        assert!(t.lookup(&key(99)).await.unwrap().is_none());
        // Nothing is left in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_damaged_small_entry_is_dropped_before_anything_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 64 << 20);
        put(&t, key(1), &body(5000)).await;
        let path = t.0.path_of(&key(1));
        flip_byte(&path, 100);
        assert!(t.lookup(&key(1)).await.unwrap().is_none());
        assert!(!path.exists(), "the damaged file is removed");
        // A truncated (torn) file fails its length check.
        put(&t, key(2), &body(5000)).await;
        let path = t.0.path_of(&key(2));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(f.metadata().unwrap().len() - 10).unwrap();
        assert!(t.lookup(&key(2)).await.unwrap().is_none());
        assert!(!path.exists());
        // So does damaged metadata.
        put(&t, key(3), &body(10)).await;
        let path = t.0.path_of(&key(3));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        let meta_at = HEADER + Labels::default().encode().len();
        f.write_all_at(b"X", meta_at as u64 + 3).unwrap();
        assert!(t.lookup(&key(3)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_damaged_block_of_a_large_entry_stops_the_body_there() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 64 << 20);
        put(&t, key(1), &body(3 * BLOCK)).await;
        let path = t.0.path_of(&key(1));
        flip_byte(&path, 100);
        let mut found = t.lookup(&key(1)).await.unwrap().unwrap();
        for _ in 0..2 {
            assert_eq!(found.body.read().await.unwrap().unwrap().len(), BLOCK);
        }
        assert!(
            found.body.read().await.is_err(),
            "the damaged block is never handed out"
        );
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn entries_survive_a_restart_and_are_accounted_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let t = tier(dir.path(), 64 << 20);
            put(&t, key(1), &body(4000)).await;
            put(&t, key(2), &body(BLOCK + 1)).await;
            // An abandoned write leaves a file in tmp/ only until the next scan.
            let mut w = t
                .writer(key(3), &meta("\"x\""), None, &Arc::default())
                .await
                .unwrap()
                .unwrap();
            w.write(Bytes::from_static(b"partial")).await.unwrap();
            std::mem::forget(w);
        }
        let t = tier(dir.path(), 64 << 20);
        assert_eq!(read_all(&t, key(1)).await.unwrap().unwrap(), body(4000));
        assert_eq!(
            read_all(&t, key(2)).await.unwrap().unwrap(),
            body(BLOCK + 1)
        );
        assert!(t.lookup(&key(3)).await.unwrap().is_none());
        assert_eq!(t.0.lock().entries.len(), 2);
        assert!(t.bytes() > 4000 + BLOCK as u64);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn stays_within_its_bytes_under_churn_and_keeps_what_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let size = 2 << 20;
        let t = tier(dir.path(), size);
        put(&t, key(0), &body(50_000)).await;
        for n in 1..100 {
            put(&t, key(n), &body(100_000)).await;
            // Key 0 is read between writes: the least recently used go first, not it.
            assert!(t.lookup(&key(0)).await.unwrap().is_some(), "after {n}");
            assert!(t.bytes() <= size, "{} bytes held", t.bytes());
        }
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|d| d.file_name() != "tmp")
            .flat_map(|d| fs::read_dir(d.path()).unwrap().flatten())
            .map(|f| f.metadata().unwrap().len())
            .sum();
        assert!(on_disk <= size, "{on_disk} bytes on disk");
        assert!(on_disk > size / 2);
    }

    /// Regression: the accounting scan used to empty `tmp/`, so a write in progress while it
    /// ran (at every start) failed at its rename.
    #[tokio::test]
    async fn the_accounting_scan_leaves_writes_in_progress_alone() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 64 << 20);
        let mut w = t
            .writer(key(1), &meta("\"x\""), None, &Arc::default())
            .await
            .unwrap()
            .unwrap();
        w.write(Bytes::from_static(b"in progress")).await.unwrap();
        t.scan_now();
        w.commit().await.unwrap();
        assert_eq!(read_all(&t, key(1)).await.unwrap().unwrap(), b"in progress");
    }

    #[tokio::test]
    async fn a_full_disk_stops_admission() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), 64 << 20);
        s.min_free = u64::MAX;
        let t = DiskTier::open(
            &s,
            CacheMetrics::unregistered().tier("disk-test"),
            Arc::default(),
        )
        .unwrap();
        assert!(t
            .writer(key(1), &meta("\"x\""), Some(10), &Arc::default())
            .await
            .unwrap()
            .is_none());
        let t = tier(dir.path(), 64 << 20);
        t.0.pause();
        assert!(t
            .writer(key(1), &meta("\"x\""), Some(10), &Arc::default())
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn metadata_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let t = tier(dir.path(), 64 << 20);
        put(&t, key(1), &body(2 * BLOCK)).await;
        assert!(t.update_meta(&key(1), &meta("\"v2\"")).await.unwrap());
        let found = t.lookup(&key(1)).await.unwrap().unwrap();
        assert_eq!(found.meta.headers()["etag"], "\"v2\"");
        assert_eq!(
            read_all(&t, key(1)).await.unwrap().unwrap(),
            body(2 * BLOCK)
        );
        assert!(!t.update_meta(&key(9), &meta("\"v2\"")).await.unwrap());
        assert!(t.remove(&key(1)).await.unwrap());
        assert!(!t.remove(&key(1)).await.unwrap());
    }

    #[tokio::test]
    async fn oversized_entries_are_declined_or_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), 64 << 20);
        s.max_entry = 1000;
        let t = DiskTier::open(
            &s,
            CacheMetrics::unregistered().tier("disk-test"),
            Arc::default(),
        )
        .unwrap();
        assert!(t
            .writer(key(1), &meta("\"x\""), Some(2000), &Arc::default())
            .await
            .unwrap()
            .is_none());
        let mut w = t
            .writer(key(1), &meta("\"x\""), None, &Arc::default())
            .await
            .unwrap()
            .unwrap();
        assert!(w.write(Bytes::from(vec![0; 2000])).await.is_err());
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(t.lookup(&key(1)).await.unwrap().is_none());
    }
}
