//! A local directory served by the gateway itself (development and quick start).
//!
//! Keys are joined to the root segment by segment and the result is canonicalised, so neither
//! `..` (already refused by the path normaliser) nor a symlink can reach outside the root.

use crate::config::DirSpec;
use crate::error::GatewayError;
use std::path::PathBuf;
use std::time::SystemTime;

/// A directory backend.
pub struct DirBackend {
    /// Config name.
    pub name: String,
    spec: DirSpec,
}

/// A regular file opened for serving.
pub struct OpenedFile {
    /// The open file.
    pub file: tokio::fs::File,
    /// Size in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
    /// Strong entity tag derived from size and modification time.
    pub etag: String,
    /// Media type guessed from the extension.
    pub content_type: String,
}

impl DirBackend {
    /// A backend for `spec.root` (already canonical).
    pub fn new(name: &str, spec: &DirSpec) -> DirBackend {
        DirBackend {
            name: name.to_string(),
            spec: spec.clone(),
        }
    }

    /// The served directory.
    pub fn root(&self) -> &std::path::Path {
        &self.spec.root
    }

    /// The key prefix (a sub-directory of the root).
    pub fn key_prefix(&self) -> &str {
        &self.spec.key_prefix
    }

    /// Opens the regular file named by `key`; anything else (missing, a directory, a link
    /// leading outside the root) is [`GatewayError::NotFound`].
    pub async fn open(&self, key: &str) -> Result<OpenedFile, GatewayError> {
        let mut path: PathBuf = self.spec.root.clone();
        for segment in key.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." {
                return Err(GatewayError::NotFound);
            }
            path.push(segment);
        }
        let real = tokio::fs::canonicalize(&path)
            .await
            .map_err(|_| GatewayError::NotFound)?;
        if !real.starts_with(&self.spec.root) {
            return Err(GatewayError::NotFound);
        }
        let file = tokio::fs::File::open(&real)
            .await
            .map_err(|_| GatewayError::NotFound)?;
        let meta = file.metadata().await.map_err(|_| GatewayError::NotFound)?;
        if !meta.is_file() {
            return Err(GatewayError::NotFound);
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let nanos = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(OpenedFile {
            file,
            len: meta.len(),
            modified,
            etag: format!("\"{:x}-{:x}\"", meta.len(), nanos),
            content_type: mime_guess::from_path(&real)
                .first_or_octet_stream()
                .essence_str()
                .to_string(),
        })
    }
}
