//! Listing the objects an asset store's backend holds (for reconciliation against the
//! database): keys relative to the backend's `key_prefix`, in pages, with their size and
//! last-modified time.

use super::dir::DirBackend;
use super::s3::S3Backend;
use super::OriginalError;

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key, relative to the backend's `key_prefix`.
    pub key: String,
    /// Its length in bytes.
    pub size: u64,
    /// When it was last written, Unix milliseconds (0 when unknown).
    pub modified_ms: u64,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The objects, in key order.
    pub objects: Vec<Listed>,
    /// Where the next page starts (pass as `after`); `None` after the last page.
    pub next: Option<String>,
}

/// Objects per S3 page (S3's own maximum).
const S3_PAGE: i32 = 1000;

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl DirBackend {
    /// Every file under the prefix folder, in one page (symbolic links are not followed).
    pub async fn list_originals(&self, _after: Option<&str>) -> Result<ListPage, OriginalError> {
        let base = self.prefix_dir();
        tokio::task::spawn_blocking(move || {
            let mut objects = Vec::new();
            let mut todo = vec![(base.clone(), String::new())];
            while let Some((dir, prefix)) = todo.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(OriginalError::Failed(format!("{}: {e}", dir.display()))),
                };
                for entry in entries.flatten() {
                    let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let key = if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    };
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        todo.push((entry.path(), key));
                    } else if meta.is_file() {
                        objects.push(Listed {
                            key,
                            size: meta.len(),
                            modified_ms: meta.modified().map_or(0, unix_ms),
                        });
                    }
                }
            }
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(ListPage {
                objects,
                next: None,
            })
        })
        .await
        .map_err(|e| OriginalError::Failed(format!("listing: {e}")))?
    }
}

impl S3Backend {
    /// A page of the objects under the key prefix, after the key `after`.
    pub async fn list_originals(&self, after: Option<&str>) -> Result<ListPage, OriginalError> {
        let prefix = self.key_in_prefix("");
        let prefix = match prefix.is_empty() {
            true => prefix,
            false => format!("{}/", prefix.trim_end_matches('/')),
        };
        let mut list = self
            .sdk_client()
            .await
            .list_objects_v2()
            .bucket(self.bucket())
            .max_keys(S3_PAGE);
        if !prefix.is_empty() {
            list = list.prefix(&prefix);
        }
        if let Some(after) = after {
            list = list.start_after(format!("{prefix}{after}"));
        }
        let page = list.send().await.map_err(|e| {
            OriginalError::Failed(format!(
                "list {}: {}",
                self.bucket(),
                aws_sdk_s3::error::DisplayErrorContext(e)
            ))
        })?;
        let objects: Vec<Listed> = page
            .contents()
            .iter()
            .filter_map(|o| {
                let key = o.key()?.strip_prefix(&prefix)?.to_string();
                Some(Listed {
                    key,
                    size: o.size().map_or(0, |s| u64::try_from(s).unwrap_or(0)),
                    modified_ms: o
                        .last_modified()
                        .and_then(|t| u64::try_from(t.to_millis().ok()?).ok())
                        .unwrap_or(0),
                })
            })
            .collect();
        let next = match page.is_truncated() {
            Some(true) => objects.last().map(|o| o.key.clone()),
            _ => None,
        };
        Ok(ListPage { objects, next })
    }
}
