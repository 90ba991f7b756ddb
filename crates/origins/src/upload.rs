//! Writing originals piece by piece, for uploads of any size with bounded memory: an
//! [`OriginalUpload`] takes the body as it arrives and makes it visible at its key only at
//! [`OriginalUpload::finish`]. Dropping one unfinished leaves nothing behind (the `dir`
//! kind's temporary file is removed, the `s3` kind's multipart upload aborted).

use super::dir::DirBackend;
use super::s3::S3Backend;
use super::OriginalError;
use async_trait::async_trait;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// An original being written.
#[async_trait]
pub trait OriginalUpload: Send {
    /// Adds the next piece of the body.
    async fn write(&mut self, chunk: &[u8]) -> Result<(), OriginalError>;
    /// Makes the whole body visible at the key; returns its length.
    async fn finish(self: Box<Self>) -> Result<u64, OriginalError>;
}

/// An original read piece by piece (copies between placements): never whole in memory.
#[async_trait]
pub trait OriginalReader: Send {
    /// The next piece; `None` at the end.
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, OriginalError>;
}

/// A file read in 256 KiB pieces.
pub struct DirReader(tokio::fs::File);

#[async_trait]
impl OriginalReader for DirReader {
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, OriginalError> {
        use tokio::io::AsyncReadExt;
        let mut piece = bytes::BytesMut::zeroed(256 * 1024);
        let n = self
            .0
            .read(&mut piece)
            .await
            .map_err(|e| OriginalError::Failed(e.to_string()))?;
        piece.truncate(n);
        Ok((n > 0).then(|| piece.freeze()))
    }
}

/// An object's body as the bucket sends it.
pub struct S3Reader(aws_sdk_s3::primitives::ByteStream);

#[async_trait]
impl OriginalReader for S3Reader {
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, OriginalError> {
        self.0
            .next()
            .await
            .transpose()
            .map_err(|e| OriginalError::Failed(e.to_string()))
    }
}

/// A file written beside its final path and renamed into place at the end.
pub struct DirUpload {
    temp: PathBuf,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    /// The backend's change counter, moved on when the file appears.
    changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl DirBackend {
    /// Starts writing the file `key` (relative to `key_prefix`; plain segments only).
    pub async fn begin_upload(&self, key: &str) -> Result<DirUpload, OriginalError> {
        let path = self.original_path(key)?;
        let failed = |e: std::io::Error| OriginalError::Failed(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(failed)?;
        }
        let temp = temp_beside(&path);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(failed)?;
        Ok(DirUpload {
            temp,
            path,
            file: Some(file),
            written: 0,
            changes: self.change_counter(),
        })
    }

    /// Opens the file `key` for reading piece by piece.
    pub async fn open_original(&self, key: &str) -> Result<DirReader, OriginalError> {
        let path = self.original_path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(DirReader(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OriginalError::Missing),
            Err(e) => Err(OriginalError::Failed(format!("{}: {e}", path.display()))),
        }
    }

    /// Renames the file `from` to `to` (both relative to `key_prefix`), replacing `to`.
    pub async fn move_original(&self, from: &str, to: &str) -> Result<(), OriginalError> {
        let (from, to) = (self.original_path(from)?, self.original_path(to)?);
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| OriginalError::Failed(format!("{}: {e}", parent.display())))?;
        }
        tokio::fs::rename(&from, &to).await.map_err(|e| {
            OriginalError::Failed(format!("{} → {}: {e}", from.display(), to.display()))
        })
    }

    /// Removes the file `key`; one already gone is no error.
    pub async fn delete_original(&self, key: &str) -> Result<(), OriginalError> {
        let path = self.original_path(key)?;
        let removed = tokio::fs::remove_file(&path).await;
        self.changed();
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(OriginalError::Failed(format!("{}: {e}", path.display())))
            }
            _ => Ok(()),
        }
    }
}

/// A temporary name in the same folder as `path` (so the rename is atomic), unique to this
/// write even when many write the same key at once.
pub(crate) fn temp_beside(path: &std::path::Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part-{}", kit::ids::random_hex128()))
}

#[async_trait]
impl OriginalUpload for DirUpload {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), OriginalError> {
        let file = self.file.as_mut().expect("open until finished");
        file.write_all(chunk)
            .await
            .map_err(|e| OriginalError::Failed(format!("{}: {e}", self.temp.display())))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, OriginalError> {
        let failed = |e: std::io::Error, p: &std::path::Path| {
            OriginalError::Failed(format!("{}: {e}", p.display()))
        };
        let mut file = self.file.take().expect("open until finished");
        file.flush().await.map_err(|e| failed(e, &self.temp))?;
        file.sync_all().await.map_err(|e| failed(e, &self.temp))?;
        drop(file);
        tokio::fs::rename(&self.temp, &self.path)
            .await
            .map_err(|e| failed(e, &self.path))?;
        // Renamed: nothing to clean up, and open copies of the old file are stale.
        self.temp = PathBuf::new();
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(self.written)
    }
}

impl Drop for DirUpload {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// An object streamed into the bucket ([`kit::s3::Upload`]).
pub struct S3Upload(kit::s3::Upload);

impl S3Backend {
    /// Starts writing the object `key` (relative to `key_prefix`), stored with `content_type`.
    pub async fn begin_upload(&self, key: &str, content_type: &str) -> S3Upload {
        let target = kit::s3::Target {
            client: self.sdk_client().await,
            bucket: self.bucket().to_string(),
            key: self.key_in_prefix(key),
            content_type: Some(content_type.to_string()),
        };
        S3Upload(kit::s3::Upload::new(target, None))
    }

    /// Opens the object `key` for reading as the bucket sends it.
    pub async fn open_original(&self, key: &str) -> Result<S3Reader, OriginalError> {
        let out = self
            .sdk_client()
            .await
            .get_object()
            .bucket(self.bucket())
            .key(self.key_in_prefix(key))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_no_such_key() => OriginalError::Missing,
                _ => OriginalError::Failed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()),
            })?;
        Ok(S3Reader(out.body))
    }

    /// Copies the object `from` to `to` inside the bucket (server side), then deletes `from`.
    pub async fn move_original(&self, from: &str, to: &str) -> Result<(), OriginalError> {
        let client = self.sdk_client().await;
        let source = format!(
            "{}/{}",
            self.bucket(),
            kit::path::encode(&self.key_in_prefix(from))
        );
        client
            .copy_object()
            .bucket(self.bucket())
            .key(self.key_in_prefix(to))
            .copy_source(source)
            .send()
            .await
            .map_err(|e| {
                OriginalError::Failed(format!(
                    "copy {from} → {to}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            })?;
        self.delete_original(from).await
    }

    /// Deletes the object `key`; one already gone is no error (S3 answers 204 either way).
    pub async fn delete_original(&self, key: &str) -> Result<(), OriginalError> {
        self.sdk_client()
            .await
            .delete_object()
            .bucket(self.bucket())
            .key(self.key_in_prefix(key))
            .send()
            .await
            .map_err(|e| {
                OriginalError::Failed(format!(
                    "delete {key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

#[async_trait]
impl OriginalUpload for S3Upload {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), OriginalError> {
        self.0
            .write(chunk)
            .await
            .map_err(|e| OriginalError::Failed(e.to_string()))
    }

    async fn finish(self: Box<Self>) -> Result<u64, OriginalError> {
        self.0
            .finish()
            .await
            .map_err(|e| OriginalError::Failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::DirSpec;

    fn backend(root: &std::path::Path) -> DirBackend {
        let spec = DirSpec {
            root: root.canonicalize().unwrap(),
            key_prefix: String::new(),
            strip_response_headers: Vec::new(),
        };
        DirBackend::new("test", &spec)
    }

    /// Every name in `dir` and below, relative to it.
    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn concurrent_writes_of_one_key_never_share_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(backend(dir.path()));
        let body = vec![7u8; 256 * 1024];
        let writers: Vec<_> = (0..20)
            .map(|_| {
                let (b, body) = (b.clone(), body.clone());
                std::thread::spawn(move || b.write_original("ab/cd/x", &body))
            })
            .collect();
        for w in writers {
            w.join().unwrap().unwrap();
        }
        assert_eq!(std::fs::read(dir.path().join("ab/cd/x")).unwrap(), body);
        assert_eq!(names(dir.path()), vec!["ab/cd/x"]);
    }

    #[tokio::test]
    async fn an_upload_is_visible_only_once_finished_and_dropping_it_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path());
        let mut up = b.begin_upload("a/b.bin").await.unwrap();
        up.write(b"hello ").await.unwrap();
        up.write(b"world").await.unwrap();
        assert!(!dir.path().join("a/b.bin").exists());
        assert_eq!(Box::new(up).finish().await.unwrap(), 11);
        assert_eq!(
            std::fs::read(dir.path().join("a/b.bin")).unwrap(),
            b"hello world"
        );
        let mut gone = b.begin_upload("a/c.bin").await.unwrap();
        gone.write(b"partial").await.unwrap();
        drop(gone);
        assert_eq!(names(dir.path()), vec!["a/b.bin"]);
        b.move_original("a/b.bin", "z/y/b.bin").await.unwrap();
        assert_eq!(names(dir.path()), vec!["z/y/b.bin"]);
        b.delete_original("z/y/b.bin").await.unwrap();
        b.delete_original("z/y/b.bin").await.unwrap();
        assert!(names(dir.path()).is_empty());
        for bad in ["../x", "a//b", "./a", ""] {
            assert!(b.begin_upload(bad).await.is_err(), "{bad}");
        }
    }
}
