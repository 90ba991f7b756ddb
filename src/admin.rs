//! The admin listener: `/metrics` (Prometheus text), `/healthz` (alive), `/readyz` (config
//! loaded, the asset store connected when configured, and every listener accepting
//! connections), open (`/metrics` requires
//! `admin.metrics_token` when one is set); and the admin API, which requires an admin token (`Authorization: Bearer`) and audits
//! every call:
//!
//! - `POST /v1/sign`: mint a credential (`scheme`: `hmac`, `cloudfront`, `s3`), answer
//!   `{"url": ...}` (or `{"cookies": {...}}` for CloudFront cookies);
//! - `POST /v1/resolve`: `{"key", "visibility", "user"?, "ttl_seconds"?}` → `{"url": ...}`
//!   (see [`crate::services::resolve`]);
//! - `POST /v1/purge`: one of `{"url"}`, `{"prefix"}`, `{"tag"}`, `{"everything": true}`
//!   (see [`cache::purge`]): removed from this gateway's tiers and the shared Redis
//!   tier, and sent to every gateway sharing the Redis → `{"removed": {tier: n}, "fleet"}`;
//!   502 when the shared tier or the fleet could not be reached (this gateway's tiers were
//!   purged; the call can be repeated);
//! - `POST /v1/revoke`: `{"kind": "token"|"key"|"user", "id"}`: refused from now on by this
//!   gateway and every gateway sharing the Redis (see [`cache::feed`]);
//! - `PUT /v1/assets?owner&module&visibility&name`: a streamed upload into the asset store;
//!   `GET /v1/assets/{id}`, `DELETE /v1/assets/{id}`, `POST /v1/assets/{id}/publish|unpublish`,
//!   `POST /v1/assets/gc`, `POST /v1/assets/reconcile`, `POST /v1/assets/presign[/{id}/complete]`
//!   (see [`crate::asset_api`]);
//!   `GET /v1/jobs[/{id}]`.

use crate::audit::AuditLog;
use crate::backend::Backend;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::services::mint::{self, CloudFrontOptions, HmacOptions, MintError};
use crate::services::resolve::{resolve_url, ResolveRequest};
use access::admin::AdminTokens;
use access::revocation::Revocations;
use async_trait::async_trait;
use cache::feed::Message;
use cache::purge::{PurgeRequest, Selector};
use http::{Response, StatusCode};
use media::assets::Visibility;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use routing::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The admin HTTP application.
pub struct AdminApp {
    backends: HashMap<String, Arc<Backend>>,
    listeners: Vec<SocketAddr>,
    metrics: Arc<Metrics>,
    config: Arc<Config>,
    tokens: AdminTokens,
    metrics_token: Option<AdminTokens>,
    audit: Option<Arc<AuditLog>>,
    control: CacheControl,
    /// The asset store's calls, when configured (not ready until the store is connected).
    assets: Option<Arc<crate::asset_api::AssetApi>>,
}

/// What the admin API purges and revokes with.
pub struct CacheControl {
    /// Purging and forgetting here and on every gateway.
    pub fleet: Arc<crate::fleet::FleetControl>,
    /// The revocations in force.
    pub revocations: Arc<Revocations>,
    /// The hosts, to name a purged URL's host by its label.
    pub hosts: Router<Backend, crate::config::Route>,
}

/// `POST /v1/revoke`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// `token`, `key` or `user`.
    kind: String,
    /// The id to refuse.
    id: String,
}

/// `POST /v1/assets/gc`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GcRequest {
    /// Only report what would be deleted.
    #[serde(default)]
    dry_run: bool,
}

/// Largest admin API request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// `POST /v1/sign`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    /// `hmac`, `cloudfront` or `s3`.
    scheme: String,
    /// The URL to sign (hmac, cloudfront).
    url: Option<String>,
    /// Lifetime in seconds (default 900).
    ttl_seconds: Option<u64>,
    key_id: Option<String>,
    user: Option<String>,
    prefix: Option<String>,
    token_id: Option<String>,
    ip: Option<String>,
    methods: Option<String>,
    not_before: Option<u64>,
    resource: Option<String>,
    #[serde(default)]
    sha256: bool,
    #[serde(default)]
    cookies: bool,
    /// The s3 backend (s3).
    backend: Option<String>,
    /// The object key relative to the backend's key_prefix (s3).
    key: Option<String>,
}

/// The status of a refused admin credential (401 missing, 403 wrong), as on the proxy.
fn denial_status(reason: access::Reason) -> StatusCode {
    StatusCode::from_u16(reason.status()).unwrap_or(StatusCode::FORBIDDEN)
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    answer(status, "application/json", body)
}

fn error_json(status: StatusCode, message: &str) -> Response<Vec<u8>> {
    json(status, serde_json::json!({ "error": message }))
}

impl AdminApp {
    /// An admin app reporting on these backends and listeners, serving the admin API with the
    /// config's tokens, keys and audit log, purging and revoking through `control`, and
    /// exporting `metrics`.
    pub fn new(
        config: Arc<Config>,
        backends: HashMap<String, Arc<Backend>>,
        listeners: Vec<SocketAddr>,
        audit: Option<Arc<AuditLog>>,
        control: CacheControl,
        assets: Option<Arc<crate::asset_api::AssetApi>>,
        metrics: Arc<Metrics>,
    ) -> AdminApp {
        let access = &config.admin_access;
        let tokens = AdminTokens::new(
            access
                .tokens
                .iter()
                .map(|(id, s)| (id.as_str(), s.expose())),
        );
        let metrics_token = access
            .metrics_token
            .as_ref()
            .map(|s| AdminTokens::new([("metrics", s.expose())]));
        AdminApp {
            backends,
            listeners,
            metrics,
            tokens,
            metrics_token,
            audit,
            assets,
            config,
            control,
        }
    }

    fn audit(
        &self,
        session: &ServerSession,
        token_id: &str,
        action: &str,
        target: &str,
        result: &str,
    ) {
        if let Some(log) = &self.audit {
            let client = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            log.action(token_id, action, target, result, client);
        }
    }

    async fn body(session: &mut ServerSession) -> Result<Vec<u8>, Response<Vec<u8>>> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_BODY {
                        return Err(error_json(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "body over 64 KiB",
                        ));
                    }
                }
                Ok(None) => return Ok(body),
                Err(_) => return Err(error_json(StatusCode::BAD_REQUEST, "cannot read the body")),
            }
        }
    }

    /// The id of the call's admin token; a refusal (audited as `action`) otherwise.
    fn authenticated(
        &self,
        session: &ServerSession,
        action: &str,
    ) -> Result<String, Box<Response<Vec<u8>>>> {
        match self.tokens.authenticate(&session.req_header().headers) {
            Ok(id) => Ok(id.to_string()),
            Err(reason) => {
                let denied = format!("denied:{}", reason.label());
                self.audit(session, "-", action, "-", &denied);
                let mut r = error_json(denial_status(reason), reason.message());
                if reason == access::Reason::Missing {
                    r.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Bearer realm=\"assetgate-admin\""),
                    );
                }
                Err(Box::new(r))
            }
        }
    }

    /// The admin API: token, method, JSON body, then the action; every call is audited.
    async fn api(&self, session: &mut ServerSession, action: &str) -> Response<Vec<u8>> {
        let token_id = match self.authenticated(session, action) {
            Ok(id) => id,
            Err(r) => return *r,
        };
        if session.req_header().method != http::Method::POST {
            let mut r = error_json(StatusCode::METHOD_NOT_ALLOWED, "use POST with a JSON body");
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            return r;
        }
        let body = match Self::body(session).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let outcome = match action {
            "sign" => match serde_json::from_slice::<SignRequest>(&body) {
                Ok(req) => {
                    let target = req.url.clone().or(req.key.clone()).unwrap_or_default();
                    (target, self.sign(req).await)
                }
                Err(e) => (String::new(), Err(ApiError::BadRequest(e.to_string()))),
            },
            "purge" => match serde_json::from_slice::<PurgeRequest>(&body) {
                Ok(req) => self.purge(&req).await,
                Err(e) => (String::new(), Err(ApiError::BadRequest(e.to_string()))),
            },
            "revoke" => match serde_json::from_slice::<RevokeRequest>(&body) {
                Ok(req) => self.revoke(&req).await,
                Err(e) => (String::new(), Err(ApiError::BadRequest(e.to_string()))),
            },
            _ => match serde_json::from_slice::<ResolveRequest>(&body) {
                Ok(req) => {
                    let url =
                        resolve_url(&self.config, &self.backends, &req, kit::time::unix_secs())
                            .await;
                    (
                        req.key.clone(),
                        url.map(|u| serde_json::json!({ "url": u }))
                            .map_err(ApiError::Mint),
                    )
                }
                Err(e) => (String::new(), Err(ApiError::BadRequest(e.to_string()))),
            },
        };
        match outcome {
            (target, Ok(value)) => {
                self.audit(session, &token_id, action, &target, "ok");
                json(StatusCode::OK, value)
            }
            (target, Err(e)) => {
                self.audit(session, &token_id, action, &target, "error");
                match e {
                    ApiError::BadRequest(m) => error_json(StatusCode::BAD_REQUEST, &m),
                    ApiError::Mint(m) => {
                        error_json(StatusCode::UNPROCESSABLE_ENTITY, &m.to_string())
                    }
                    ApiError::Incomplete(value) => json(StatusCode::BAD_GATEWAY, value),
                }
            }
        }
    }

    /// `/v1/assets` and `/v1/assets/{id}` (see [`crate::asset_api`]): authenticated and
    /// audited like the JSON calls. `PUT /v1/assets` streams an upload; `GET` and `DELETE` of
    /// `/v1/assets/{id}` read and delete one.
    async fn assets_call(
        &self,
        session: &mut ServerSession,
        id: Option<&str>,
    ) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let (id, verb) = match id.map(|i| i.split_once('/')) {
            Some(Some((id, verb))) => (Some(id), Some(verb)),
            Some(None) => (id, None),
            None => (None, None),
        };
        let action = match (&method, id, verb) {
            (&http::Method::PUT, None, None) => "upload",
            (&http::Method::GET, None, None) => "list",
            (&http::Method::POST, Some("gc"), None) => "gc",
            (&http::Method::POST, Some("reconcile"), None) => "reconcile",
            (&http::Method::POST, Some("presign"), None) => "presign",
            (&http::Method::POST, Some("presign"), Some(v)) if v.ends_with("/complete") => {
                "complete"
            }
            (&http::Method::GET, Some(_), None) => "get",
            (&http::Method::DELETE, Some(_), None) => "delete",
            (&http::Method::POST, Some(_), Some("publish")) => "publish",
            (&http::Method::POST, Some(_), Some("unpublish")) => "unpublish",
            _ => "assets",
        };
        let token_id = match self.authenticated(session, action) {
            Ok(id) => id,
            Err(r) => return *r,
        };
        let Some(api) = &self.assets else {
            return error_json(StatusCode::NOT_FOUND, "no [assets] store is configured");
        };
        let (target, outcome) = match (action, id) {
            ("upload", _) => api.upload(session).await,
            ("list", _) => {
                let query = session.req_header().uri.query().map(str::to_string);
                (
                    query.clone().unwrap_or_default(),
                    api.list(query.as_deref()).await,
                )
            }
            ("reconcile", _) => (String::new(), api.reconcile().await),
            ("presign", _) => {
                let body = match Self::body(session).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match serde_json::from_slice::<crate::asset_api::PresignRequest>(&body) {
                    Ok(req) => (
                        format!("{}/{}", req.owner, req.module),
                        api.presign(req).await,
                    ),
                    Err(e) => (String::new(), Err((400, e.to_string()))),
                }
            }
            ("complete", _) => {
                let upload = verb.unwrap_or_default().trim_end_matches("/complete");
                (upload.to_string(), api.complete(upload).await)
            }
            ("gc", _) => {
                let body = match Self::body(session).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match serde_json::from_slice::<GcRequest>(&body) {
                    Ok(req) => (String::new(), api.gc(req.dry_run).await),
                    Err(e) => (String::new(), Err((400, e.to_string()))),
                }
            }
            ("get", Some(id)) => (id.to_string(), api.get(id).await),
            ("delete", Some(id)) => (id.to_string(), api.delete(id).await),
            ("publish", Some(id)) => (
                id.to_string(),
                self.publish(api, id, Visibility::Public).await,
            ),
            ("unpublish", Some(id)) => (
                id.to_string(),
                self.publish(api, id, Visibility::Private).await,
            ),
            _ => {
                let (allow, message) = match (id, verb) {
                    (None, _) => (
                        "GET, PUT",
                        "use GET to list, PUT with an asset's bytes to upload",
                    ),
                    (Some("gc" | "reconcile" | "presign"), _) => ("POST", "use POST"),
                    (Some(_), None) => ("GET, DELETE", "use GET or DELETE on an asset"),
                    (Some(_), Some(_)) => ("POST", "use POST on an asset's publish or unpublish"),
                };
                let mut r = error_json(StatusCode::METHOD_NOT_ALLOWED, message);
                r.headers_mut()
                    .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
                return r;
            }
        };
        match outcome {
            Ok(value) => {
                self.audit(session, &token_id, action, &target, "ok");
                json(StatusCode::OK, value)
            }
            Err((status, message)) => {
                self.audit(session, &token_id, action, &target, "error");
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                error_json(status, &message)
            }
        }
    }

    /// `POST /v1/assets/{id}/publish|unpublish` (see [`media::assets::publish`]): the switch,
    /// and the queued move; then every gateway forgets its lookup of the hash, and an
    /// unpublished asset's public URL (from `[resolve] public_base`) is purged everywhere.
    async fn publish(
        &self,
        api: &crate::asset_api::AssetApi,
        id: &str,
        visibility: Visibility,
    ) -> Result<serde_json::Value, crate::asset_api::Refusal> {
        let done = api.set_visibility(id, visibility).await?;
        let mut answer = serde_json::json!({
            "before": crate::asset_api::asset_json(&done.before),
            "after": crate::asset_api::asset_json(&done.after),
            "job": done.job,
        });
        self.forget_everywhere(&done.after.blob_hash, &mut answer)
            .await;
        // A public object is no longer public at its URL: purged now, before its move.
        let unpublished =
            done.before.visibility == Visibility::Public && visibility != Visibility::Public;
        let public_base = self.config.resolve.public_base.as_deref();
        if let (true, Some(base)) = (unpublished, public_base) {
            let url = format!("{}/{}", base.trim_end_matches('/'), done.before.storage_key);
            let req = PurgeRequest {
                url: Some(url),
                prefix: None,
                tag: None,
                everything: false,
            };
            self.purge_into(&req, &mut answer).await;
        }
        Ok(answer)
    }

    /// `GET /v1/jobs[?state=S]` and `GET /v1/jobs/{id}`: the asset store's durable jobs.
    async fn jobs_call(&self, session: &mut ServerSession, id: Option<&str>) -> Response<Vec<u8>> {
        let token_id = match self.authenticated(session, "jobs") {
            Ok(id) => id,
            Err(r) => return *r,
        };
        let Some(api) = &self.assets else {
            return error_json(StatusCode::NOT_FOUND, "no [assets] store is configured");
        };
        if session.req_header().method != http::Method::GET {
            let mut r = error_json(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            r.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
            return r;
        }
        let query = session.req_header().uri.query().map(str::to_string);
        let state = kit::params::find(query.as_deref(), &["state"])
            .ok()
            .and_then(|[s]| s.map(str::to_string));
        let target = id.unwrap_or("-").to_string();
        match api.jobs(id, state.as_deref()).await {
            Ok(value) => {
                self.audit(session, &token_id, "jobs", &target, "ok");
                json(StatusCode::OK, value)
            }
            Err((status, message)) => {
                self.audit(session, &token_id, "jobs", &target, "error");
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                error_json(status, &message)
            }
        }
    }

    /// Purges `req` as `POST /v1/purge` does, saying what it removed in `answer["purged"]`.
    async fn purge_into(&self, req: &PurgeRequest, answer: &mut serde_json::Value) {
        let (_, purged) = self.purge(req).await;
        answer["purged"] = match purged {
            Ok(v) | Err(ApiError::Incomplete(v)) => v,
            Err(e) => serde_json::Value::String(e.message()),
        };
    }

    /// Forgets the lookup of `hash` here and, through the fleet feed, on every gateway; a
    /// feed that cannot be reached is said in `answer`.
    async fn forget_everywhere(&self, hash: &str, answer: &mut serde_json::Value) {
        use media::assets::fleet::Fleet;
        if let Some(problem) = self.control.fleet.forget(hash).await {
            answer["fleet"] = serde_json::Value::String(problem);
        }
    }

    /// `POST /v1/purge`: this gateway's tiers, the shared tier, then the fleet.
    async fn purge(&self, req: &PurgeRequest) -> (String, Result<serde_json::Value, ApiError>) {
        let hosts = &self.control.hosts;
        let selector = match Selector::parse(req, &|h| hosts.host_label(h).map(|l| l.to_string())) {
            Ok(s) => s,
            Err(e) => return (String::new(), Err(ApiError::BadRequest(e))),
        };
        let target = format!("{selector:?}");
        let purged = self.control.fleet.purge(&selector, "admin").await;
        match purged.complete {
            true => (target, Ok(purged.report)),
            false => (target, Err(ApiError::Incomplete(purged.report))),
        }
    }

    /// `POST /v1/revoke`: in force here at once, then sent to the fleet.
    async fn revoke(&self, req: &RevokeRequest) -> (String, Result<serde_json::Value, ApiError>) {
        let line = format!("{} {}", req.kind, req.id);
        if req.id.is_empty() || req.id.contains(char::is_whitespace) {
            return (
                line,
                Err(ApiError::BadRequest("`id` is one non-empty word".into())),
            );
        }
        if let Err(e) = self.control.revocations.revoke_line(&line) {
            return (line, Err(ApiError::BadRequest(e)));
        }
        let Some(feed) = &self.control.fleet.feed else {
            let value = serde_json::json!({
                "revoked": line,
                "fleet": "none",
                "note": "in force on this gateway until it restarts; add it to the revocation file to keep it",
            });
            return (line, Ok(value));
        };
        match feed.publish(&Message::Revoke(line.clone())).await {
            Ok(()) => (
                line.clone(),
                Ok(serde_json::json!({ "revoked": line, "fleet": "sent" })),
            ),
            Err(e) => {
                let value = serde_json::json!({
                    "revoked": line,
                    "fleet": "not sent",
                    "error": format!("in force on this gateway only: fleet: {e}; repeat the call"),
                });
                (line, Err(ApiError::Incomplete(value)))
            }
        }
    }

    async fn sign(&self, req: SignRequest) -> Result<serde_json::Value, ApiError> {
        let ttl = Duration::from_secs(req.ttl_seconds.unwrap_or(900));
        let now = kit::time::unix_secs();
        let url = || {
            req.url
                .clone()
                .ok_or_else(|| ApiError::BadRequest("`url` is required".into()))
        };
        match req.scheme.as_str() {
            "hmac" => {
                let opts = HmacOptions {
                    key_id: req.key_id.clone(),
                    ttl,
                    not_before: req.not_before,
                    ip: req.ip.clone(),
                    user: req.user.clone(),
                    token_id: req.token_id.clone(),
                    methods: req.methods.clone(),
                    prefix: req.prefix.clone(),
                };
                let url =
                    mint::hmac_url(&self.config, &url()?, &opts, now).map_err(ApiError::Mint)?;
                Ok(serde_json::json!({ "url": url }))
            }
            "cloudfront" => {
                let opts = CloudFrontOptions {
                    key_id: req.key_id.clone(),
                    ttl,
                    resource: req.resource.clone(),
                    not_before: req.not_before,
                    ip: req.ip.clone(),
                    sha256: req.sha256,
                };
                if req.cookies {
                    let cookies = mint::cloudfront_cookies(&self.config, &url()?, &opts, now)
                        .map_err(ApiError::Mint)?;
                    let map: serde_json::Map<String, serde_json::Value> =
                        cookies.into_iter().map(|(k, v)| (k, v.into())).collect();
                    Ok(serde_json::json!({ "cookies": map }))
                } else {
                    let url = mint::cloudfront_url(&self.config, &url()?, &opts, now)
                        .map_err(ApiError::Mint)?;
                    Ok(serde_json::json!({ "url": url }))
                }
            }
            "s3" => {
                let (Some(name), Some(key)) = (&req.backend, &req.key) else {
                    return Err(ApiError::BadRequest(
                        "`backend` and `key` are required".into(),
                    ));
                };
                let backend = self
                    .backends
                    .get(name)
                    .ok_or_else(|| ApiError::BadRequest(format!("no backend \"{name}\"")))?;
                let url = backend
                    .presign_get(key, true, ttl)
                    .await
                    .map_err(|e| ApiError::Mint(MintError::Presign(e.to_string())))?;
                Ok(serde_json::json!({ "url": url }))
            }
            other => Err(ApiError::BadRequest(format!(
                "scheme \"{other}\" cannot be minted; use hmac, cloudfront or s3"
            ))),
        }
    }

    /// Sets `assetgate_backend_up` from the backends' current state.
    fn refresh_backend_health(&self) {
        for (name, backend) in &self.backends {
            for (member, up) in backend.member_health() {
                self.metrics
                    .origins
                    .up
                    .with_label_values(&[name, &member])
                    .set(i64::from(up));
            }
        }
    }

    async fn listeners_up(&self) -> bool {
        for addr in &self.listeners {
            let mut target = *addr;
            if target.ip().is_unspecified() {
                target.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            let connect = tokio::net::TcpStream::connect(target);
            if !matches!(
                tokio::time::timeout(Duration::from_millis(500), connect).await,
                Ok(Ok(_))
            ) {
                return false;
            }
        }
        true
    }
}

fn answer(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("valid admin response")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let text = "text/plain; charset=utf-8";
        let path = session.req_header().uri.path().to_string();
        if let Some(action) = path.strip_prefix("/v1/") {
            return match action {
                "sign" | "resolve" | "purge" | "revoke" => self.api(session, action).await,
                "assets" => self.assets_call(session, None).await,
                "jobs" => self.jobs_call(session, None).await,
                a if a.starts_with("jobs/") => {
                    let id = a["jobs/".len()..].to_string();
                    self.jobs_call(session, Some(&id)).await
                }
                a if a.starts_with("assets/") => {
                    let id = a["assets/".len()..].to_string();
                    self.assets_call(session, Some(&id)).await
                }
                _ => error_json(StatusCode::NOT_FOUND, "no such admin API call"),
            };
        }
        if let (Some(required), "/metrics") = (&self.metrics_token, path.as_str()) {
            if let Err(reason) = required.authenticate(&session.req_header().headers) {
                let body = format!("{}\n", reason.message()).into_bytes();
                return answer(denial_status(reason), text, body);
            }
        }
        match path.as_str() {
            "/metrics" => {
                self.refresh_backend_health();
                answer(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                )
            }
            "/healthz" => answer(StatusCode::OK, text, b"ok\n".to_vec()),
            "/readyz" => {
                if self.assets.as_ref().is_some_and(|a| !a.lookups.ready()) {
                    answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        text,
                        b"asset store not connected yet\n".to_vec(),
                    )
                } else if self.listeners_up().await {
                    answer(StatusCode::OK, text, b"ready\n".to_vec())
                } else {
                    answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        text,
                        b"listeners not accepting yet\n".to_vec(),
                    )
                }
            }
            _ => answer(StatusCode::NOT_FOUND, text, b"not found\n".to_vec()),
        }
    }
}

/// Why an admin API call failed.
enum ApiError {
    /// The request body is not what the call takes.
    BadRequest(String),
    /// Minting or resolving refused it.
    Mint(MintError),
    /// Done here but not everywhere (answered 502 with this body).
    Incomplete(serde_json::Value),
}

impl ApiError {
    /// What went wrong, as a message.
    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m) => m.clone(),
            ApiError::Mint(e) => e.to_string(),
            ApiError::Incomplete(v) => v.to_string(),
        }
    }
}
