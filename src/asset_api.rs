//! The asset calls of the admin API, beside the JSON calls of [`crate::admin`]:
//!
//! - `PUT /v1/assets?owner=U&module=M&visibility=V&name=N`: the body is the asset's bytes,
//!   streamed into the placement's backend while it is hashed (memory bounded for any size;
//!   S3 multipart above 8 MiB), then recorded. Its type is sniffed from the bytes, never
//!   taken from the client; `[assets.upload]` limits size (413) and types (415). The same
//!   bytes again for the same owner and module are the same asset. Answers `{"id", "hash",
//!   "size", "type", "backend", "key", "uploaded"}`.
//! - `GET /v1/assets?owner&module&visibility&after&limit`: active assets, paged in id order
//!   → `{"assets": [...], "next"}` (pass `next` as `after` for the next page).
//! - `POST /v1/assets/presign` `{"owner", "module", "visibility"?, "name"?, "type"?}`: a
//!   presigned POST form straight to the bucket for a key the server chose; then
//!   `POST /v1/assets/presign/{id}/complete` hashes, checks, places and records it.
//! - `GET /v1/assets/{id}`: the asset `{"id", "hash", "owner", "module", "visibility",
//!   "backend", "key"}`; 404 when there is none.
//! - `POST /v1/assets/{id}/publish` and `/unpublish`: the visibility becomes `public` or
//!   `private` in the database at once (every gateway forgets its lookup of the hash), then the
//!   bytes move to that visibility's placement (copied, verified against the hash, the old
//!   object removed when nothing else is served from it); with `[resolve] public_base`, the
//!   old public URL is purged everywhere → `{"before", "after", "released"}`.
//! - `DELETE /v1/assets/{id}`: the asset's row, and what nothing references any more (its
//!   object; with the blob's last asset the blob and all its objects, and its cached variants
//!   everywhere) → `{"deleted", "objects_removed", "blob_removed", "left_behind", "purged"?}`.
//! - `POST /v1/assets/gc` `{"dry_run": true|false}`: applies `[assets.retention]` now →
//!   `{"dry_run", "expired": [...], "deleted", "left_behind", "problems"}`.
//! - `POST /v1/assets/reconcile`: compares the database with the backends now → the report
//!   (`rows_checked`, `objects_checked`, `missing`, `orphans`, `size_mismatches`,
//!   `drift_ratio`, `mismatches`, …).

use media::assets::ingest::{self, BodySource, Destinations, Ownership, UploadError};
use media::assets::lookup::AccessCache;
use media::assets::originals::OriginalStores;
use media::assets::Visibility;
use media::config::AssetSettings;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

/// What the asset calls work with.
pub struct AssetApi {
    /// The store (not ready until connected), as the request path sees it.
    pub lookups: Arc<AccessCache>,
    /// The backends placements write to.
    pub stores: OriginalStores,
    /// `[assets]`: placements and upload limits.
    pub settings: AssetSettings,
    /// Wakes this gateway's job runner when a call queued a job.
    pub wake: Arc<tokio::sync::Notify>,
    /// What deletions tell the other gateways.
    pub fleet: Arc<crate::fleet::FleetControl>,
    /// The asset store's metrics (uploads are counted here).
    pub metrics: media::assets::metrics::AssetMetrics,
    /// The whole config and the backends, for the URL `[resolve]` gives an asset.
    pub resolving: (
        Arc<crate::config::Config>,
        std::collections::HashMap<String, Arc<crate::backend::Backend>>,
    ),
}

/// The request body, piece by piece as the client sends it.
pub struct RequestBody<'a>(pub &'a mut ServerSession);

#[async_trait::async_trait]
impl BodySource for RequestBody<'_> {
    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, String> {
        self.0.read_request_body().await.map_err(|e| e.to_string())
    }
}

/// A refused or failed call: the status and the message.
pub type Refusal = (u16, String);

impl AssetApi {
    /// `PUT /v1/assets`: the audit target (owner/module/name) and the answer.
    pub async fn upload(
        &self,
        session: &mut ServerSession,
    ) -> (String, Result<serde_json::Value, Refusal>) {
        let query = session.req_header().uri.query().map(str::to_string);
        let who = match ownership(query.as_deref()) {
            Ok(who) => who,
            Err(message) => return (String::new(), Err((400, message))),
        };
        let name = param(query.as_deref(), "name").unwrap_or_else(|| "upload".into());
        let target = format!("{}/{}/{name}", who.owner, who.module);
        let mut body = RequestBody(session);
        let added = self.upload_as(&mut body, &who, &name, "api").await;
        (
            target,
            added.map_err(|e| (crate::error::upload_status(&e), e.to_string())),
        )
    }

    /// Streams `body` (named `name`) into the store as `who`'s asset, within
    /// `[assets.upload]` → the answer of an upload. The admin API's `PUT /v1/assets` (`path`
    /// `api`) and the proxy's upload routes (`route`) both come here.
    pub async fn upload_as(
        &self,
        body: &mut dyn BodySource,
        who: &Ownership,
        name: &str,
        path: &str,
    ) -> Result<serde_json::Value, UploadError> {
        let started = std::time::Instant::now();
        let store = self
            .lookups
            .store()
            .ok_or(UploadError::Store(media::assets::StoreError::NotReady));
        let to = Destinations {
            stores: &self.stores,
            placements: &self.settings.placements,
        };
        let added = match store {
            Ok(store) => ingest::upload(store, &to, body, name, who, &self.settings.upload).await,
            Err(e) => Err(e),
        };
        self.counted(path, started, added.as_ref().map_err(UploadError::label));
        match added {
            Ok(a) => {
                self.announced(&a).await;
                Ok(self.answer(&a).await)
            }
            Err(e) => {
                if matches!(e, UploadError::Store(_)) {
                    tracing::error!(error = %e, owner = %who.owner, module = %who.module, "upload failed");
                }
                Err(e)
            }
        }
    }

    /// The answer of an upload: what was recorded, and the URL `[resolve]` gives the asset
    /// (`url`; `url_error` says why there is none, e.g. `resolve.public_base` not set).
    async fn answer(&self, a: &ingest::Added) -> serde_json::Value {
        let mut answer = added_json(a);
        match self.url_of(&a.asset).await {
            Ok(url) => answer["url"] = url.into(),
            Err(e) => answer["url_error"] = e.into(),
        }
        answer
    }

    /// The URL `[resolve]` gives `asset`: public → the public host's plain URL, private → a
    /// signed URL for its owner (15 minutes unless `resolve.private_ttl` says otherwise),
    /// admin-private → a presigned URL of `resolve.admin_backend`.
    pub async fn url_of(&self, asset: &media::assets::store::Asset) -> Result<String, String> {
        use crate::services::resolve::{resolve_url, ResolveRequest, Visibility as V};
        let visibility = match asset.visibility {
            Visibility::Public => V::Public,
            Visibility::Private => V::Private,
            Visibility::AdminPrivate => V::AdminPrivate,
        };
        let req = ResolveRequest {
            key: asset.storage_key.clone(),
            visibility,
            user: Some(asset.owner.clone()),
            ttl_seconds: None,
        };
        let (config, backends) = &self.resolving;
        resolve_url(config, backends, &req, kit::time::unix_secs())
            .await
            .map_err(|e| e.to_string())
    }

    /// Counts an upload by `path` that began at `started`: recorded, or refused with a label.
    fn counted(
        &self,
        path: &str,
        started: std::time::Instant,
        outcome: Result<&ingest::Added, &str>,
    ) {
        let m = &self.metrics;
        match outcome {
            Ok(a) => {
                let result = if a.uploaded { "stored" } else { "same" };
                m.ingest.with_label_values(&[path, result]).inc();
                m.ingest_bytes.inc_by(a.blob.size_bytes);
                m.ingest_duration
                    .with_label_values(&[path])
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(label) => m.ingest.with_label_values(&[path, label]).inc(),
        }
    }
}

impl AssetApi {
    /// The connected store, or 503.
    fn store(&self) -> Result<&media::assets::store::AssetStore, Refusal> {
        self.lookups
            .store()
            .ok_or((503, "the asset store is not connected yet".into()))
    }

    /// `GET /v1/assets?owner&module&visibility&after&limit`: active assets in id order,
    /// `limit` (default 100, at most 1000) per page → `{"assets": [...], "next"}`, `next`
    /// being the `after` of the next page (`null` after the last).
    pub async fn list(&self, query: Option<&str>) -> Result<serde_json::Value, Refusal> {
        let visibility = match param(query, "visibility") {
            None => None,
            Some(v) => Some(Visibility::parse(&v).ok_or((
                400,
                format!("\"{v}\" is not a visibility; use public, private or admin-private"),
            ))?),
        };
        let filter = media::assets::store::AssetFilter {
            owner: param(query, "owner").filter(|v| !v.is_empty()),
            module: param(query, "module").filter(|v| !v.is_empty()),
            visibility,
        };
        let limit = match param(query, "limit") {
            None => 100,
            Some(n) => match n.parse::<u32>() {
                Ok(n @ 1..=1000) => n,
                _ => return Err((400, format!("limit \"{n}\" is not a number from 1 to 1000"))),
            },
        };
        let after = param(query, "after");
        let assets = self
            .store()?
            .list_assets(&filter, after.as_deref(), limit)
            .await
            .map_err(|e| (502, e.to_string()))?;
        let next = match assets.len() == limit as usize {
            true => assets.last().map(|a| a.id.clone()),
            false => None,
        };
        Ok(serde_json::json!({
            "assets": assets.iter().map(asset_json).collect::<Vec<_>>(),
            "next": next,
        }))
    }

    /// `GET /v1/assets/{id}`.
    pub async fn get(&self, id: &str) -> Result<serde_json::Value, Refusal> {
        let asset = self
            .store()?
            .asset(id)
            .await
            .map_err(|e| (502, e.to_string()))?
            .ok_or((404, format!("no asset \"{id}\"")))?;
        Ok(asset_json(&asset))
    }

    /// `DELETE /v1/assets/{id}`: the rows and released objects (see
    /// [`media::assets::remove`]); every gateway forgets its lookup of the hash, so access
    /// follows the store from the next request; when the blob went, its cached variants are
    /// purged from every tier of every gateway by their tag.
    pub async fn delete(&self, id: &str) -> Result<serde_json::Value, Refusal> {
        let store = self.store()?;
        let gone =
            media::assets::remove::delete_everywhere(store, &self.stores, self.fleet.as_ref(), id)
                .await
                .map_err(|e| (502, e.to_string()))?
                .ok_or((404, format!("no asset \"{id}\"")))?;
        if !gone.removed.left_behind.is_empty() {
            self.wake.notify_one();
        }
        let d = &gone.removed.deleted;
        let objects: Vec<String> = d.objects.iter().map(|(b, k)| format!("{b}:{k}")).collect();
        let left: Vec<serde_json::Value> = gone
            .removed
            .left_behind
            .iter()
            .map(|l| serde_json::json!({"object": format!("{}:{}", l.backend, l.key), "error": l.error, "job": l.job}))
            .collect();
        let mut answer = serde_json::json!({
            "deleted": asset_json(&d.asset),
            "objects_removed": objects,
            "blob_removed": d.blob_removed,
            "left_behind": left,
        });
        if let Some(problem) = gone.unforgotten {
            answer["fleet"] = problem.into();
        }
        if let Some(purged) = gone.purged {
            answer["purged"] = purged;
        }
        Ok(answer)
    }

    /// `POST /v1/assets/gc` `{"dry_run"?}`: applies `[assets.retention]` now, on this
    /// gateway (see [`media::assets::retention`]) → the report.
    pub async fn gc(&self, dry_run: bool) -> Result<serde_json::Value, Refusal> {
        let retention = &self.settings.retention;
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        let report = media::assets::retention::sweep(
            self.store()?,
            &self.stores,
            self.fleet.as_ref(),
            retention,
            now,
            dry_run,
        )
        .await
        .map_err(|e| (502, e.to_string()))?;
        if report.left_behind > 0 {
            self.wake.notify_one();
        }
        Ok(report.to_json(&retention.rules))
    }

    /// `POST /v1/assets/presign` `{"owner", "module", "visibility"?, "name"?, "type"?}`: a
    /// presigned POST form for a key the server chose (see [`media::assets::presigned`]) →
    /// `{"upload", "method", "url", "fields", "expires_at", "complete"}`.
    pub async fn presign(&self, req: PresignRequest) -> Result<serde_json::Value, Refusal> {
        let visibility = match req.visibility.as_deref() {
            None => Visibility::Private,
            Some(v) => Visibility::parse(v).ok_or((
                400,
                format!("\"{v}\" is not a visibility; use public, private or admin-private"),
            ))?,
        };
        let who = Ownership {
            owner: req.owner,
            module: req.module,
            visibility,
        };
        let to = Destinations {
            stores: &self.stores,
            placements: &self.settings.placements,
        };
        let name = req.name.unwrap_or_else(|| "upload".into());
        let limits = &self.settings.upload;
        let (pending, post) = media::assets::presigned::begin(
            self.store()?,
            &to,
            &who,
            &name,
            req.r#type.as_deref(),
            limits,
            limits.presign_ttl,
        )
        .await
        .map_err(|e| (crate::error::presign_status(&e), e.to_string()))?;
        let fields: serde_json::Map<String, serde_json::Value> = post
            .fields
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        Ok(serde_json::json!({
            "upload": pending.id,
            "method": "POST",
            "url": post.url,
            "fields": fields,
            "expires_at": post.expires_at,
            "max_size": limits.max_size,
            "complete": format!("/v1/assets/presign/{}/complete", pending.id),
        }))
    }

    /// `POST /v1/assets/presign/{id}/complete`: the uploaded object hashed, checked, placed
    /// and recorded → the answer of an upload.
    pub async fn complete(&self, id: &str) -> Result<serde_json::Value, Refusal> {
        let to = Destinations {
            stores: &self.stores,
            placements: &self.settings.placements,
        };
        let started = std::time::Instant::now();
        let added =
            media::assets::presigned::complete(self.store()?, &to, id, &self.settings.upload).await;
        let label = |e: &media::assets::presigned::PresignError| match e {
            media::assets::presigned::PresignError::Upload(u) => u.label(),
            _ => "refused",
        };
        self.counted("presigned", started, added.as_ref().map_err(label));
        let added = added.map_err(|e| (crate::error::presign_status(&e), e.to_string()))?;
        self.announced(&added).await;
        Ok(self.answer(&added).await)
    }

    /// `POST /v1/assets/reconcile`: compares the database with the backends now, on this
    /// gateway (see [`media::assets::reconcile`]); the report is recorded as a finished
    /// `reconcile` job (so every gateway's drift metrics show it) → the report and `"job"`.
    pub async fn reconcile(&self) -> Result<serde_json::Value, Refusal> {
        let store = self.store()?;
        let now = i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX);
        let report = media::assets::reconcile::reconcile(
            store,
            &self.stores,
            self.fleet.as_ref(),
            &self.settings.reconcile,
            now,
        )
        .await
        .map_err(|e| (502, e.to_string()))?;
        let mut answer = report.to_json();
        let job = store
            .record_done(media::assets::runner::RECONCILE, &answer.to_string())
            .await
            .map_err(|e| (502, e.to_string()))?;
        answer["job"] = job.into();
        Ok(answer)
    }
}

impl AssetApi {
    /// `POST /v1/assets/{id}/publish` (`public`) and `/unpublish` (`private`): the answer, and
    /// the asset before and after (for forgetting and purging).
    pub async fn set_visibility(
        &self,
        id: &str,
        visibility: Visibility,
    ) -> Result<media::assets::publish::Republished, Refusal> {
        let done = media::assets::publish::set_visibility(self.store()?, id, visibility)
            .await
            .map_err(|e| (502, e.to_string()))?
            .ok_or((404, format!("no asset \"{id}\"")))?;
        self.wake.notify_one();
        Ok(done)
    }

    /// `GET /v1/jobs/{id}` and `GET /v1/jobs?state=S`.
    pub async fn jobs(
        &self,
        id: Option<&str>,
        state: Option<&str>,
    ) -> Result<serde_json::Value, Refusal> {
        let store = self.store()?;
        let as_json = |j: &media::assets::jobs::Job| {
            let result = serde_json::from_str(&j.result).unwrap_or(serde_json::Value::Null);
            serde_json::json!({"id": j.id, "kind": j.kind, "payload": j.payload, "state": j.state,
                               "attempts": j.attempts, "last_error": j.last_error, "result": result})
        };
        match id {
            Some(id) => store
                .job(id)
                .await
                .map_err(|e| (502, e.to_string()))?
                .map(|j| as_json(&j))
                .ok_or((404, format!("no job \"{id}\""))),
            None => {
                if let Some(s) = state.filter(|s| !media::assets::jobs::STATES.contains(s)) {
                    return Err((
                        400,
                        format!("\"{s}\" is not a job state; use queued, running, done or failed"),
                    ));
                }
                let jobs = store
                    .jobs(state, 100)
                    .await
                    .map_err(|e| (502, e.to_string()))?;
                let counts = store.job_counts().await.map_err(|e| (502, e.to_string()))?;
                Ok(serde_json::json!({
                    "jobs": jobs.iter().map(as_json).collect::<Vec<_>>(),
                    "counts": counts.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                }))
            }
        }
    }
}

impl AssetApi {
    /// After an upload: a lookup remembered before (even "nothing here", from a request that
    /// came first) must not outlive it on any gateway.
    async fn announced(&self, added: &ingest::Added) {
        use media::assets::fleet::Fleet;
        self.fleet.forget(&added.hash).await;
    }
}

/// The answer of an upload (streamed or presigned).
fn added_json(a: &ingest::Added) -> serde_json::Value {
    serde_json::json!({
        "id": a.asset.id,
        "hash": a.hash,
        "size": a.blob.size_bytes,
        "type": a.blob.mime_type,
        "backend": a.asset.backend,
        "key": a.asset.storage_key,
        "uploaded": a.uploaded,
    })
}

/// `POST /v1/assets/presign`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// Whose asset it becomes.
    pub owner: String,
    /// Of what module.
    pub module: String,
    /// `private` (default), `public` or `admin-private`.
    pub visibility: Option<String>,
    /// The file name (for `{name}` placements).
    pub name: Option<String>,
    /// The `Content-Type` the form will send (it must be one the uploads take).
    pub r#type: Option<String>,
}

/// An asset as the API shows it.
pub fn asset_json(a: &media::assets::store::Asset) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "hash": a.blob_hash,
        "owner": a.owner,
        "module": a.module,
        "visibility": a.visibility.name(),
        "backend": a.backend,
        "key": a.storage_key,
    })
}

/// The decoded value of the query parameter `name`.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    let [raw] = kit::params::find(query, &[name]).ok()?;
    kit::params::decode(raw?).map(|v| v.into_owned())
}

/// `owner`, `module` and `visibility` (default `private`) of the query.
fn ownership(query: Option<&str>) -> Result<Ownership, String> {
    let required = |name: &str| {
        param(query, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the query needs {name}=…"))
    };
    let visibility = match param(query, "visibility") {
        None => Visibility::Private,
        Some(v) => Visibility::parse(&v).ok_or_else(|| {
            format!("\"{v}\" is not a visibility; use public, private or admin-private")
        })?,
    };
    Ok(Ownership {
        owner: required("owner")?,
        module: required("module")?,
        visibility,
    })
}
