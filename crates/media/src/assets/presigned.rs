//! Presigned uploads, for large files sent by browsers straight to the bucket:
//!
//! 1. [`begin`]: the server picks the key — `.incoming/{user}/{module}/{id}` in the backend the
//!    owner's placement writes to, so a client can choose neither — records the pending upload
//!    and answers a SigV4 POST policy for that key alone, short-lived, with the size limit
//!    (`content-length-range`) and, when the route takes one family of types, the
//!    `Content-Type` enforced by the bucket itself.
//! 2. The client posts the file to the bucket.
//! 3. [`complete`]: the object is read back piece by piece (never whole in memory), hashed, its
//!    type sniffed from its bytes and checked against the limits (refused: the object and the
//!    pending row go), then moved to its content placement and recorded, as a streamed upload
//!    is.
//!
//! Uploads never completed are removed by retention (`[assets.retention] unfinished_uploads`).

use super::ingest::{self, Added, Destinations, Ownership, UploadError, UploadLimits};
use super::store::AssetStore;
use super::{StoreError, Visibility};
use origins::presign::{PostConditions, PresignedPost, TypeCondition};
use sqlx::Row;
use std::time::Duration;

/// An upload presigned and not completed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its id (32 hex digits).
    pub id: String,
    /// Whose asset it becomes, of what module and visibility.
    pub owner: String,
    /// The module.
    pub module: String,
    /// The visibility.
    pub visibility: Visibility,
    /// The file name it was presigned with (sanitised at completion).
    pub name: String,
    /// The backend the client uploads to.
    pub backend: String,
    /// The key the client uploads to.
    pub key: String,
    /// When it was presigned, Unix ms.
    pub created_ms: i64,
}

const PENDING_COLUMNS: &str =
    "id, owner, module, visibility, name, backend, storage_key, created_at";

fn pending(row: &sqlx::any::AnyRow) -> Result<Pending, StoreError> {
    let visibility: String = row.try_get("visibility")?;
    Ok(Pending {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        module: row.try_get("module")?,
        visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Private),
        name: row.try_get("name")?,
        backend: row.try_get("backend")?,
        key: row.try_get("storage_key")?,
        created_ms: row.try_get("created_at")?,
    })
}

impl AssetStore {
    async fn put_pending(&self, p: &Pending) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO uploads (id, owner, module, visibility, name, backend, storage_key, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.id)
        .bind(&p.owner)
        .bind(&p.module)
        .bind(p.visibility.name())
        .bind(&p.name)
        .bind(&p.backend)
        .bind(&p.key)
        .bind(p.created_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The pending upload `id`.
    pub async fn pending_upload(&self, id: &str) -> Result<Option<Pending>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PENDING_COLUMNS} FROM uploads WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(pending).transpose()
    }

    /// Pending uploads presigned before `before_ms`, oldest first, at most `limit`.
    pub async fn stale_uploads(
        &self,
        before_ms: i64,
        limit: u32,
    ) -> Result<Vec<Pending>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PENDING_COLUMNS} FROM uploads WHERE created_at < $1 ORDER BY created_at, id LIMIT $2"
        )))
        .bind(before_ms)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(pending).collect()
    }

    /// Forgets the pending upload `id`; whether there was one.
    pub async fn drop_pending(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Why a presigned upload could not be begun or completed (besides [`UploadError`]).
#[derive(Debug, thiserror::Error)]
pub enum PresignError {
    /// No pending upload has this id (never presigned, completed, or removed).
    #[error("no pending upload \"{0}\"")]
    Unknown(String),
    /// The client has not uploaded the object yet.
    #[error("nothing has been uploaded for upload \"{0}\" yet")]
    NotUploaded(String),
    /// The placement's backend cannot presign (a `dir` backend).
    #[error("{0}")]
    Unsupported(String),
    /// Refused or failed like a streamed upload.
    #[error(transparent)]
    Upload(#[from] UploadError),
}

impl From<StoreError> for PresignError {
    fn from(e: StoreError) -> PresignError {
        PresignError::Upload(UploadError::Store(e))
    }
}

/// The `Content-Type` condition for `declared` (the type the client says it will send) under
/// `limits`: exactly the declared type (which the limits must take), else the one family the
/// limits take (`image/*` → starts with `image/`), else none.
fn type_condition(
    declared: Option<&str>,
    limits: &UploadLimits,
) -> Result<Option<TypeCondition>, UploadError> {
    if let Some(t) = declared {
        let t = t.to_ascii_lowercase();
        if !limits.allows(&t) {
            return Err(UploadError::UnsupportedType(t));
        }
        return Ok(Some(TypeCondition::Exactly(t)));
    }
    Ok(match limits.types.as_slice() {
        [one] => Some(match one.strip_suffix('*') {
            Some(prefix) => TypeCondition::StartsWith(prefix.to_string()),
            None => TypeCondition::Exactly(one.clone()),
        }),
        _ => None,
    })
}

/// Begins a presigned upload of `name` for `who`: records it and answers the signed POST
/// form, good for `ttl`.
pub async fn begin(
    store: &AssetStore,
    to: &Destinations<'_>,
    who: &Ownership,
    name: &str,
    declared_type: Option<&str>,
    limits: &UploadLimits,
    ttl: Duration,
) -> Result<(Pending, PresignedPost), PresignError> {
    for (field, value) in [("owner", &who.owner), ("module", &who.module)] {
        super::placement::check_segment(field, value)
            .map_err(|e| UploadError::Refused(e.to_string()))?;
    }
    let content_type = type_condition(declared_type, limits)?;
    let backend = to
        .placements
        .choose(who.visibility, &who.module)
        .backend
        .clone();
    let target = to.store(&backend)?;
    let id = kit::ids::random_hex128();
    let p = Pending {
        key: format!(".incoming/{}/{}/{id}", who.owner, who.module),
        id,
        owner: who.owner.clone(),
        module: who.module.clone(),
        visibility: who.visibility,
        name: name.to_string(),
        backend,
        created_ms: i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX),
    };
    let conditions = PostConditions {
        key: p.key.clone(),
        max_size: limits.max_size,
        content_type,
        expires_in: ttl,
    };
    let post = target
        .presign_post(&conditions)
        .await
        .map_err(|e| match e {
            origins::OriginalError::Unsupported(kind) => PresignError::Unsupported(format!(
                "backend \"{}\" is a {kind} backend; presigned uploads need an s3 backend",
                p.backend
            )),
            other => {
                PresignError::Upload(UploadError::Store(StoreError::Ingest(other.to_string())))
            }
        })?;
    store.put_pending(&p).await?;
    Ok((p, post))
}

/// Completes the presigned upload `id`: the object is hashed and checked as it is read back,
/// then placed and recorded; refused, the object and the pending row are removed.
pub async fn complete(
    store: &AssetStore,
    to: &Destinations<'_>,
    id: &str,
    limits: &UploadLimits,
) -> Result<Added, PresignError> {
    let p = store
        .pending_upload(id)
        .await?
        .ok_or_else(|| PresignError::Unknown(id.to_string()))?;
    let target = to.store(&p.backend)?;
    let mut reader = match target.open_original(&p.key).await {
        Ok(r) => r,
        Err(origins::OriginalError::Missing) => return Err(PresignError::NotUploaded(id.into())),
        Err(e) => return Err(StoreError::Ingest(format!("upload {id}: {e}")).into()),
    };
    let who = Ownership {
        owner: p.owner.clone(),
        module: p.module.clone(),
        visibility: p.visibility,
    };
    let name = p.name.clone();
    let mut body = ingest::ReaderBody(reader.as_mut());
    let checked = ingest::hash_stored(&mut body, &p.backend, limits).await;
    let outcome = match checked {
        Ok(blob) => {
            ingest::place_staged(
                store,
                to,
                target.as_ref(),
                ingest::Staged::At(&p.key),
                blob,
                &name,
                &who,
            )
            .await
        }
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        let _ = target.delete_original(&p.key).await;
    }
    if !matches!(outcome, Err(UploadError::Store(_))) {
        store.drop_pending(id).await?;
    }
    Ok(outcome?)
}

/// Removes pending uploads presigned more than `older_than` before `now_ms` (their objects,
/// if the client sent any, and their rows); returns how many.
pub async fn sweep_unfinished(
    store: &AssetStore,
    stores: &super::originals::OriginalStores,
    older_than: Duration,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let before = now_ms.saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    let mut removed = 0;
    for p in store.stale_uploads(before, 1000).await? {
        if let Some(target) = stores.get(&p.backend) {
            if let Err(e) = target.delete_original(&p.key).await {
                tracing::warn!(upload = %p.id, error = %e, "cannot remove an unfinished upload");
                continue;
            }
        }
        store.drop_pending(&p.id).await?;
        removed += 1;
    }
    Ok(removed)
}
