//! The SQL side of the asset store: one `sqlx` pool over SQLite or PostgreSQL (the `Any`
//! driver, so every statement here is written once in SQL both accept), the embedded
//! migrations, registration and the lookups the request path needs.

use super::{StoreError, Visibility};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::time::Duration;

/// The migrations in `migrations/`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A stored original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// SHA-256 of the bytes, 64 lower-case hex digits.
    pub content_hash: String,
    /// Object key in the originals backend (relative to its `key_prefix`).
    pub storage_key: String,
    /// Length in bytes.
    pub size_bytes: u64,
    /// Media type found when it was added.
    pub mime_type: String,
    /// Pixel width, when the header told.
    pub width: Option<u64>,
    /// Pixel height, when the header told.
    pub height: Option<u64>,
}

/// One owner's claim on a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Stable id (32 hex digits).
    pub id: String,
    /// The blob's content hash.
    pub blob_hash: String,
    /// Who owns it (the user a credential must name).
    pub owner: String,
    /// What part of the product it belongs to (e.g. `avatars`).
    pub module: String,
    /// Who may see it.
    pub visibility: Visibility,
}

/// What the request path needs to know about a content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashAccess {
    /// The stored original.
    pub blob: Blob,
    /// Some active asset referencing it is public.
    pub public: bool,
    /// Owners of active private assets referencing it.
    pub owners: Vec<String>,
    /// Some active asset referencing it is admin-private.
    pub admin_private: bool,
}

/// The database URL with a password, if any, replaced by `***` (for logs and errors).
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The connected store.
#[derive(Debug, Clone)]
pub struct AssetStore {
    pool: AnyPool,
}

impl AssetStore {
    /// Connects to `url` (`sqlite://PATH` — created when missing — or `postgres://...`) and
    /// applies every migration not yet applied.
    pub async fn connect(url: &str) -> Result<AssetStore, StoreError> {
        sqlx::any::install_default_drivers();
        let url = sqlite_create(url);
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(AssetStore { pool })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records a blob; an existing one with this hash is kept as it is (the bytes are the
    /// same by construction). Returns whether it was new.
    pub async fn put_blob(&self, blob: &Blob) -> Result<bool, StoreError> {
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "INSERT INTO blobs (content_hash, storage_key, size_bytes, mime_type, width, height, \
             state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'stored', $7, $7) \
             ON CONFLICT (content_hash) DO NOTHING",
        )
        .bind(&blob.content_hash)
        .bind(&blob.storage_key)
        .bind(blob.size_bytes as i64)
        .bind(&blob.mime_type)
        .bind(blob.width.map(|w| w as i64))
        .bind(blob.height.map(|h| h as i64))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records `owner`'s asset of module `module` on the blob `hash`, or updates the
    /// visibility of the one they already have: adding the same file twice is one asset.
    pub async fn put_asset(
        &self,
        hash: &str,
        owner: &str,
        module: &str,
        visibility: Visibility,
    ) -> Result<Asset, StoreError> {
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO assets (id, blob_hash, owner, module, visibility, state, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) \
             ON CONFLICT (blob_hash, owner, module) DO UPDATE SET \
             visibility = excluded.visibility, state = 'active', updated_at = excluded.updated_at",
        )
        .bind(kit::ids::random_hex128())
        .bind(hash)
        .bind(owner)
        .bind(module)
        .bind(visibility.name())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT id, blob_hash, owner, module, visibility FROM assets \
             WHERE blob_hash = $1 AND owner = $2 AND module = $3",
        )
        .bind(hash)
        .bind(owner)
        .bind(module)
        .fetch_one(&self.pool)
        .await?;
        asset(&row)
    }

    /// The blob with this hash, if stored.
    pub async fn blob(&self, hash: &str) -> Result<Option<Blob>, StoreError> {
        let row = sqlx::query(
            "SELECT content_hash, storage_key, size_bytes, mime_type, width, height FROM blobs \
             WHERE content_hash = $1 AND state = 'stored'",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(blob).transpose()
    }

    /// Every active asset referencing the blob `hash`.
    pub async fn assets_of(&self, hash: &str) -> Result<Vec<Asset>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, blob_hash, owner, module, visibility FROM assets \
             WHERE blob_hash = $1 AND state = 'active' ORDER BY created_at, id",
        )
        .bind(hash)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(asset).collect()
    }

    /// Everything the request path needs about `hash`; `None` when no stored blob has it or
    /// no active asset references it.
    pub async fn access(&self, hash: &str) -> Result<Option<HashAccess>, StoreError> {
        let Some(blob) = self.blob(hash).await? else {
            return Ok(None);
        };
        let assets = self.assets_of(hash).await?;
        if assets.is_empty() {
            return Ok(None);
        }
        let mut owners: Vec<String> = assets
            .iter()
            .filter(|a| a.visibility == Visibility::Private)
            .map(|a| a.owner.clone())
            .collect();
        owners.sort();
        owners.dedup();
        Ok(Some(HashAccess {
            public: assets.iter().any(|a| a.visibility == Visibility::Public),
            admin_private: assets
                .iter()
                .any(|a| a.visibility == Visibility::AdminPrivate),
            owners,
            blob,
        }))
    }

    /// How many blobs and assets are stored (for `assetgate assets` output and tests).
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let blobs: i64 = sqlx::query("SELECT COUNT(*) FROM blobs")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let assets: i64 = sqlx::query("SELECT COUNT(*) FROM assets")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok((blobs as u64, assets as u64))
    }
}

/// A SQLite URL gets `mode=rwc`, so the file is created on first start.
fn sqlite_create(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_string()
    }
}

fn blob(row: &AnyRow) -> Result<Blob, StoreError> {
    let size: i64 = row.try_get("size_bytes")?;
    let width: Option<i64> = row.try_get("width")?;
    let height: Option<i64> = row.try_get("height")?;
    Ok(Blob {
        content_hash: row.try_get("content_hash")?,
        storage_key: row.try_get("storage_key")?,
        size_bytes: size.max(0) as u64,
        mime_type: row.try_get("mime_type")?,
        width: width.map(|w| w.max(0) as u64),
        height: height.map(|h| h.max(0) as u64),
    })
}

fn asset(row: &AnyRow) -> Result<Asset, StoreError> {
    let visibility: String = row.try_get("visibility")?;
    Ok(Asset {
        id: row.try_get("id")?,
        blob_hash: row.try_get("blob_hash")?,
        owner: row.try_get("owner")?,
        module: row.try_get("module")?,
        visibility: Visibility::parse(&visibility).ok_or_else(|| {
            StoreError::Ingest(format!("unknown visibility \"{visibility}\" in the store"))
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redacted("postgres://gate:s3cret@db:5432/assets"),
            "postgres://gate:***@db:5432/assets"
        );
        assert_eq!(redacted("sqlite:///var/lib/a.db"), "sqlite:///var/lib/a.db");
    }

    #[test]
    fn sqlite_files_are_created() {
        assert_eq!(
            sqlite_create("sqlite:///x/a.db"),
            "sqlite:///x/a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create("sqlite:///x/a.db?mode=ro"),
            "sqlite:///x/a.db?mode=ro"
        );
        assert_eq!(sqlite_create("postgres://h/db"), "postgres://h/db");
    }

    fn sample_blob(hash: &str) -> Blob {
        Blob {
            content_hash: hash.to_string(),
            storage_key: format!("{}/{hash}", &hash[..2]),
            size_bytes: 10,
            mime_type: "image/png".to_string(),
            width: Some(4),
            height: Some(3),
        }
    }

    #[tokio::test]
    async fn identical_bytes_make_one_blob_and_an_asset_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let hash = "ab".repeat(32);
        assert!(store.put_blob(&sample_blob(&hash)).await.unwrap());
        assert!(!store.put_blob(&sample_blob(&hash)).await.unwrap());
        let a = store
            .put_asset(&hash, "alice", "avatars", Visibility::Private)
            .await
            .unwrap();
        let again = store
            .put_asset(&hash, "alice", "avatars", Visibility::Private)
            .await
            .unwrap();
        assert_eq!(a.id, again.id);
        store
            .put_asset(&hash, "bob", "avatars", Visibility::Private)
            .await
            .unwrap();
        assert_eq!(store.counts().await.unwrap(), (1, 2));
        let access = store.access(&hash).await.unwrap().unwrap();
        assert!(!access.public);
        assert_eq!(access.owners, vec!["alice", "bob"]);
        store
            .put_asset(&hash, "bob", "avatars", Visibility::Public)
            .await
            .unwrap();
        assert!(store.access(&hash).await.unwrap().unwrap().public);
        assert_eq!(store.access(&"cd".repeat(32)).await.unwrap(), None);
        // Reconnecting runs no migration twice.
        store.close().await;
        let store = AssetStore::connect(&url).await.unwrap();
        assert_eq!(store.counts().await.unwrap(), (1, 2));
    }
}
