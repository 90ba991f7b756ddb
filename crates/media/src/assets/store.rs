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
    /// The backend holding the object variants are read from (`""`: the store's default
    /// backend, `[assets] originals`).
    pub backend: String,
    /// That object's key in the backend (relative to the backend's own `key_prefix`).
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
    /// The backend of the object it is served from (`""`: the default backend).
    pub backend: String,
    /// That object's key.
    pub storage_key: String,
    /// The file name it was uploaded with, sanitised (`""` for assets from before names).
    pub name: String,
}

/// Where an object's key stands before an upload to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectSlot {
    /// No object is recorded at this key.
    Free,
    /// The object there holds these very bytes: nothing to upload.
    Same,
    /// The object there holds other bytes (a named placement re-used): it is replaced.
    Other(String),
}

/// What deleting an asset removed from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The asset as it was.
    pub asset: Asset,
    /// No asset referenced its blob any more: the blob's row is gone too.
    pub blob_removed: bool,
    /// The objects (backend, key) nothing references any more: their bytes are to be removed.
    pub objects: Vec<(String, String)>,
}

/// An asset to record: whose, which bytes, and the object it is served from.
#[derive(Debug, Clone)]
pub struct NewAsset<'a> {
    /// The blob's content hash.
    pub hash: &'a str,
    /// The owner.
    pub owner: &'a str,
    /// The module.
    pub module: &'a str,
    /// Who may see it.
    pub visibility: Visibility,
    /// The backend of its object (`""`: the default backend).
    pub backend: &'a str,
    /// Its object's key.
    pub storage_key: &'a str,
    /// The file name it was uploaded with, sanitised.
    pub name: &'a str,
}

/// Which assets a listing shows (every field `None`: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetFilter {
    /// Only this owner's.
    pub owner: Option<String>,
    /// Only this module's.
    pub module: Option<String>,
    /// Only of this visibility.
    pub visibility: Option<Visibility>,
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
    /// The database is PostgreSQL (else SQLite): the few statements that differ ask.
    postgres: bool,
}

impl AssetStore {
    /// Connects to `url` (`sqlite://PATH` — created when missing — or `postgres://...`) and
    /// applies every migration not yet applied.
    pub async fn connect(url: &str) -> Result<AssetStore, StoreError> {
        sqlx::any::install_default_drivers();
        let url = sqlite_create(url);
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // A write-ahead log, synced at checkpoints: a commit costs one write,
                        // not several fsyncs, and survives the process being killed (a power
                        // loss may lose the last commits, never consistency). Readers never
                        // wait for the writer.
                        use sqlx::Executor;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let postgres = url.starts_with("postgres");
        Ok(AssetStore { pool, postgres })
    }

    /// The pool, for the other parts of the store (jobs).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database is PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres
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
            "INSERT INTO blobs (content_hash, backend, storage_key, size_bytes, mime_type, width, \
             height, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'stored', $8, $8) \
             ON CONFLICT (content_hash) DO NOTHING",
        )
        .bind(&blob.content_hash)
        .bind(&blob.backend)
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

    /// Where the object at `key` in `backend` stands for the bytes `hash` (one reconciliation
    /// found missing is free: it is written again).
    pub async fn object_slot(
        &self,
        backend: &str,
        key: &str,
        hash: &str,
    ) -> Result<ObjectSlot, StoreError> {
        let row =
            sqlx::query("SELECT blob_hash FROM objects WHERE backend = $1 AND storage_key = $2 AND missing_since = 0")
                .bind(backend)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => ObjectSlot::Free,
            Some(row) => {
                let held: String = row.try_get("blob_hash")?;
                if held == hash {
                    ObjectSlot::Same
                } else {
                    ObjectSlot::Other(held)
                }
            }
        })
    }

    /// Records that the object at `key` in `backend` holds the blob `hash` (replacing what it
    /// held before; present again if it was missing). The blob row must exist.
    pub async fn put_object(&self, backend: &str, key: &str, hash: &str) -> Result<(), StoreError> {
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO objects (backend, storage_key, blob_hash, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (backend, storage_key) DO UPDATE SET blob_hash = excluded.blob_hash, \
             missing_since = 0",
        )
        .bind(backend)
        .bind(key)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records `owner`'s asset of module `module` on the blob `hash`, served from the object
    /// at `key` in `backend`, or updates the visibility and object of the one they already
    /// have: adding the same file twice is one asset.
    pub async fn put_asset(&self, new: &NewAsset<'_>) -> Result<Asset, StoreError> {
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO assets (id, blob_hash, owner, module, visibility, state, backend, \
             storage_key, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $9) \
             ON CONFLICT (blob_hash, owner, module) DO UPDATE SET \
             visibility = excluded.visibility, state = 'active', backend = excluded.backend, \
             storage_key = excluded.storage_key, name = excluded.name, \
             updated_at = excluded.updated_at",
        )
        .bind(kit::ids::random_hex128())
        .bind(new.hash)
        .bind(new.owner)
        .bind(new.module)
        .bind(new.visibility.name())
        .bind(new.backend)
        .bind(new.storage_key)
        .bind(new.name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE blob_hash = $1 AND owner = $2 AND module = $3"
        )))
        .bind(new.hash)
        .bind(new.owner)
        .bind(new.module)
        .fetch_one(&self.pool)
        .await?;
        asset(&row)
    }

    /// The blob with this hash, if stored and its object is not known to be missing.
    pub async fn blob(&self, hash: &str) -> Result<Option<Blob>, StoreError> {
        let row = sqlx::query(
            "SELECT content_hash, backend, storage_key, size_bytes, mime_type, width, height \
             FROM blobs WHERE content_hash = $1 AND state = 'stored' AND NOT EXISTS \
             (SELECT 1 FROM objects o WHERE o.backend = blobs.backend \
             AND o.storage_key = blobs.storage_key AND o.missing_since > 0)",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(blob).transpose()
    }

    /// Every active asset referencing the blob `hash`.
    pub async fn assets_of(&self, hash: &str) -> Result<Vec<Asset>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSET_COLUMNS} FROM assets \
             WHERE blob_hash = $1 AND state = 'active' ORDER BY created_at, id"
        )))
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

    /// The active asset with this id.
    pub async fn asset(&self, id: &str) -> Result<Option<Asset>, StoreError> {
        asset_by_id(&self.pool, id, true).await
    }

    /// Sets the visibility of the asset `id`; returns whether there is one.
    pub async fn set_visibility(
        &self,
        id: &str,
        visibility: Visibility,
    ) -> Result<bool, StoreError> {
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "UPDATE assets SET visibility = $1, updated_at = $2 WHERE id = $3 AND state = 'active'",
        )
        .bind(visibility.name())
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Serves the asset `id` from the object at `key` in `backend` from now on; when nothing
    /// references its old object any more, that object's row goes (and a blob that read its
    /// variants from it reads them from the new one). Returns the old object when it was
    /// released, for its bytes to be removed.
    pub async fn move_asset(
        &self,
        id: &str,
        backend: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(old) = asset_by_id(&mut *tx, id, false).await? else {
            return Ok(None);
        };
        sqlx::query("UPDATE assets SET backend = $1, storage_key = $2 WHERE id = $3")
            .bind(backend)
            .bind(key)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let users: i64 = sqlx::query(
            "SELECT COUNT(*) FROM assets WHERE blob_hash = $1 AND backend = $2 AND storage_key = $3",
        )
        .bind(&old.blob_hash)
        .bind(&old.backend)
        .bind(&old.storage_key)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let released =
            users == 0 && (old.backend.as_str(), old.storage_key.as_str()) != (backend, key);
        if released {
            sqlx::query(
                "DELETE FROM objects WHERE backend = $1 AND storage_key = $2 AND blob_hash = $3",
            )
            .bind(&old.backend)
            .bind(&old.storage_key)
            .bind(&old.blob_hash)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE blobs SET backend = $1, storage_key = $2 \
                 WHERE content_hash = $3 AND backend = $4 AND storage_key = $5",
            )
            .bind(backend)
            .bind(key)
            .bind(&old.blob_hash)
            .bind(&old.backend)
            .bind(&old.storage_key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(released.then_some((old.backend, old.storage_key)))
    }

    /// Deletes the asset `id` in one transaction, and with it what nothing references any
    /// more: its object's row when no other asset is served from it, and the blob's row with
    /// every object of it when no asset of the blob is left. Returns what was deleted, so the
    /// caller removes those objects' bytes and purges their cached copies; `None` when there
    /// is no such asset.
    pub async fn delete_asset(&self, id: &str) -> Result<Option<Deleted>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(asset) = asset_by_id(&mut *tx, id, false).await? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM assets WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let count = |sql: &'static str| sqlx::query(sql);
        let same_object: i64 = count(
            "SELECT COUNT(*) FROM assets WHERE blob_hash = $1 AND backend = $2 AND storage_key = $3",
        )
        .bind(&asset.blob_hash)
        .bind(&asset.backend)
        .bind(&asset.storage_key)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let same_blob: i64 = count("SELECT COUNT(*) FROM assets WHERE blob_hash = $1")
            .bind(&asset.blob_hash)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut objects = Vec::new();
        if same_blob == 0 {
            for row in sqlx::query("SELECT backend, storage_key FROM objects WHERE blob_hash = $1")
                .bind(&asset.blob_hash)
                .fetch_all(&mut *tx)
                .await?
            {
                objects.push((row.try_get("backend")?, row.try_get("storage_key")?));
            }
            sqlx::query("DELETE FROM objects WHERE blob_hash = $1")
                .bind(&asset.blob_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM blobs WHERE content_hash = $1")
                .bind(&asset.blob_hash)
                .execute(&mut *tx)
                .await?;
        } else if same_object == 0 {
            sqlx::query(
                "DELETE FROM objects WHERE backend = $1 AND storage_key = $2 AND blob_hash = $3",
            )
            .bind(&asset.backend)
            .bind(&asset.storage_key)
            .bind(&asset.blob_hash)
            .execute(&mut *tx)
            .await?;
            objects.push((asset.backend.clone(), asset.storage_key.clone()));
        }
        tx.commit().await?;
        Ok(Some(Deleted {
            blob_removed: same_blob == 0,
            asset,
            objects,
        }))
    }

    /// Active assets matching `filter`, in id order after the id `after`, at most `limit`.
    pub async fn list_assets(
        &self,
        filter: &AssetFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Asset>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE state = 'active' \
             AND ($1 = '' OR owner = $1) AND ($2 = '' OR module = $2) \
             AND ($3 = '' OR visibility = $3) AND id > $4 ORDER BY id LIMIT $5"
        )))
        .bind(filter.owner.as_deref().unwrap_or_default())
        .bind(filter.module.as_deref().unwrap_or_default())
        .bind(filter.visibility.map_or("", Visibility::name))
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(asset).collect()
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
        backend: row.try_get("backend")?,
        storage_key: row.try_get("storage_key")?,
        size_bytes: size.max(0) as u64,
        mime_type: row.try_get("mime_type")?,
        width: width.map(|w| w.max(0) as u64),
        height: height.map(|h| h.max(0) as u64),
    })
}

/// The asset `id` (only an active one with `active_only`), through `db`: the pool or a
/// transaction.
async fn asset_by_id<'e, E>(db: E, id: &str, active_only: bool) -> Result<Option<Asset>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let state = if active_only {
        " AND state = 'active'"
    } else {
        ""
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1{state}"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(asset).transpose()
}

/// The columns [`asset`] reads (a constant: the only text formatted into a statement).
pub(crate) const ASSET_COLUMNS: &str =
    "id, blob_hash, owner, module, visibility, backend, storage_key, name";

pub(crate) fn asset(row: &AnyRow) -> Result<Asset, StoreError> {
    let visibility: String = row.try_get("visibility")?;
    Ok(Asset {
        id: row.try_get("id")?,
        blob_hash: row.try_get("blob_hash")?,
        owner: row.try_get("owner")?,
        module: row.try_get("module")?,
        backend: row.try_get("backend")?,
        storage_key: row.try_get("storage_key")?,
        name: row.try_get("name")?,
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
            backend: String::new(),
            storage_key: format!("{}/{hash}", &hash[..2]),
            size_bytes: 10,
            mime_type: "image/png".to_string(),
            width: Some(4),
            height: Some(3),
        }
    }

    fn new_asset<'a>(hash: &'a str, owner: &'a str, visibility: Visibility) -> NewAsset<'a> {
        NewAsset {
            hash,
            owner,
            module: "avatars",
            visibility,
            backend: "",
            storage_key: "k",
            name: "x.png",
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
            .put_asset(&new_asset(&hash, "alice", Visibility::Private))
            .await
            .unwrap();
        let again = store
            .put_asset(&new_asset(&hash, "alice", Visibility::Private))
            .await
            .unwrap();
        assert_eq!(a.id, again.id);
        store
            .put_asset(&new_asset(&hash, "bob", Visibility::Private))
            .await
            .unwrap();
        assert_eq!(store.counts().await.unwrap(), (1, 2));
        let access = store.access(&hash).await.unwrap().unwrap();
        assert!(!access.public);
        assert_eq!(access.owners, vec!["alice", "bob"]);
        store
            .put_asset(&new_asset(&hash, "bob", Visibility::Public))
            .await
            .unwrap();
        assert!(store.access(&hash).await.unwrap().unwrap().public);
        assert_eq!(store.access(&"cd".repeat(32)).await.unwrap(), None);
        // Reconnecting runs no migration twice.
        store.close().await;
        let store = AssetStore::connect(&url).await.unwrap();
        assert_eq!(store.counts().await.unwrap(), (1, 2));
    }

    #[tokio::test]
    async fn an_object_key_knows_which_bytes_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        store.put_blob(&sample_blob(&a)).await.unwrap();
        store.put_blob(&sample_blob(&b)).await.unwrap();
        let slot = |hash: String| {
            let store = store.clone();
            async move {
                store
                    .object_slot("pub", "shared/x.png", &hash)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(slot(a.clone()).await, ObjectSlot::Free);
        store.put_object("pub", "shared/x.png", &a).await.unwrap();
        assert_eq!(slot(a.clone()).await, ObjectSlot::Same);
        assert_eq!(slot(b.clone()).await, ObjectSlot::Other(a.clone()));
        store.put_object("pub", "shared/x.png", &b).await.unwrap();
        assert_eq!(slot(b.clone()).await, ObjectSlot::Same);
        // The same key in another backend is another object.
        assert_eq!(
            store
                .object_slot("other", "shared/x.png", &b)
                .await
                .unwrap(),
            ObjectSlot::Free
        );
    }

    #[tokio::test]
    async fn deleting_the_last_asset_of_a_blob_releases_its_objects_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let hash = "ab".repeat(32);
        store.put_blob(&sample_blob(&hash)).await.unwrap();
        // alice and bob share the content-addressed object; carol has her own.
        let mut ids = Vec::new();
        for (owner, key) in [("alice", "shared"), ("bob", "shared"), ("carol", "carol/x")] {
            store.put_object("", key, &hash).await.unwrap();
            let mut new = new_asset(&hash, owner, Visibility::Private);
            new.storage_key = key;
            ids.push(store.put_asset(&new).await.unwrap().id);
        }
        let carol = store.delete_asset(&ids[2]).await.unwrap().unwrap();
        assert_eq!(carol.objects, vec![(String::new(), "carol/x".to_string())]);
        assert!(!carol.blob_removed);
        let alice = store.delete_asset(&ids[0]).await.unwrap().unwrap();
        assert!(
            alice.objects.is_empty() && !alice.blob_removed,
            "bob still uses it"
        );
        assert_eq!(store.delete_asset(&ids[0]).await.unwrap(), None);
        let bob = store.delete_asset(&ids[1]).await.unwrap().unwrap();
        assert!(bob.blob_removed);
        assert_eq!(bob.objects, vec![(String::new(), "shared".to_string())]);
        assert_eq!(store.counts().await.unwrap(), (0, 0));
        assert_eq!(store.blob(&hash).await.unwrap(), None);
    }

    #[tokio::test]
    async fn rows_from_before_placements_live_in_the_default_backend() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        std::fs::create_dir(&first).unwrap();
        let name = "20261201000001_blobs_and_assets.sql";
        let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/");
        std::fs::copy(format!("{migrations}{name}"), first.join(name)).unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .connect(&sqlite_create(&url))
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(first.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let hash = "ef".repeat(32);
        for statement in [
            format!(
                "INSERT INTO blobs (content_hash, storage_key, size_bytes, mime_type, state, \
                 created_at, updated_at) VALUES ('{hash}', 'originals/ef/ef/{hash}', 3, \
                 'image/png', 'stored', 1, 1)"
            ),
            format!(
                "INSERT INTO assets (id, blob_hash, owner, module, visibility, state, \
                 created_at, updated_at) VALUES ('a1', '{hash}', 'o', 'm', 'public', 'active', 1, 1)"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = AssetStore::connect(&url).await.unwrap();
        let blob = store.blob(&hash).await.unwrap().unwrap();
        assert_eq!(blob.backend, "");
        assert_eq!(blob.storage_key, format!("originals/ef/ef/{hash}"));
        let assets = store.assets_of(&hash).await.unwrap();
        assert_eq!(assets[0].storage_key, blob.storage_key);
        assert_eq!(
            store
                .object_slot("", &blob.storage_key, &hash)
                .await
                .unwrap(),
            ObjectSlot::Same
        );
    }
}
