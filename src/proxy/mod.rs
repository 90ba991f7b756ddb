//! The Pingora [`ProxyHttp`] implementation. Each phase is a few lines that call the module
//! owning the decision: [`kit::client`] (who asks), [`routing`] (where),
//! [`crate::backend`] (how to ask and what the answer means), [`decorate`] (what the client
//! sees), [`respond`] (answers the gateway makes itself), [`crate::error`] (what failures look
//! like). The proxy never matches on backend kinds.

mod caching;
pub mod cors;
mod ctx;
pub mod decorate;
pub mod respond;
mod shared_buckets;
pub mod stages;

pub use ctx::{CacheCtx, Matched, Outcome, RequestCtx, RouteServices, ServedRoute, Upstream};

use crate::audit::AuditLog;
use crate::backend::dir::FileAnswer;
use crate::backend::{Ask, Backend, MemberOutcome, Verdict};
use crate::config::{CompressionSettings, Config, Route};
use crate::error::{GatewayError, CLIENT_CLOSED_STATUS};
use crate::metrics::{Metrics, UNMATCHED};
use access::{AccessRequest, Authenticator, Scheme};
use async_trait::async_trait;
use bytes::Bytes;
use cache::admit::{self, Circumstances};
use cache::status::seconds_left;
use cache::tiered::TieredHit;
use cache::CacheLayer;
use caching::{cache_report, invalidate_after_unsafe, key_parts, observe_cache, CACHE_STATUS};
use http::{header, Method};
use kit::client::{ClientInfo, TrustedProxies};
use kit::host::{self, request_host};
use kit::range::RangeSyntax;
use limits::{LimitSettings, RateLimiter};
use media::assets::lookup::AccessCache;
use pingora::cache::key::HashBinary;
use pingora::cache::storage::HitHandler;
use pingora::cache::{
    CacheKey, CacheMeta, CachePhase, ForcedFreshness, NoCacheReason, RespCacheable,
};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::compression::{ResponseCompression, ResponseCompressionBuilder};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{range_header_filter, FailToProxy, ProxyHttp, RangeType, Session};
use respond::Answer;
use routing::metrics::RouteMetrics;
use routing::rules::RequestFacts;
use routing::Router;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The gateway: an immutable snapshot of routing and backends.
pub struct Gateway {
    router: Router<Backend, Route, RouteServices>,
    auth: Arc<Authenticator>,
    /// Where admin actions are recorded (admin routes).
    audit: Option<Arc<AuditLog>>,
    /// Lifetime of the presigned URLs admin routes redirect to.
    presign_ttl: std::time::Duration,
    compression: CompressionSettings,
    trusted_proxies: TrustedProxies,
    access_log: bool,
    metrics: Arc<Metrics>,
    /// Request metrics for requests that matched no route.
    unmatched: RouteMetrics,
    /// The asset store's lookups (variants routes).
    assets: Option<Arc<AccessCache>>,
    /// Request head limits (`[limits]`).
    limits: LimitSettings,
    /// Each client's rate over every route (`limits.client`).
    client_limit: Option<RateLimiter>,
    /// Where `shared` rate limits keep their buckets (the Redis tier).
    shared_buckets: Option<shared_buckets::RedisBuckets>,
    /// Where upload routes put what they are sent (with `[assets]`).
    uploads: Option<Arc<crate::asset_api::AssetApi>>,
}

/// The asset store as the request path uses it (both `None` without `[assets]`).
pub struct StoreAccess {
    /// Its lookups (variants routes).
    pub lookups: Option<Arc<AccessCache>>,
    /// Its uploads (upload routes).
    pub uploads: Option<Arc<crate::asset_api::AssetApi>>,
}

impl Gateway {
    /// Builds the gateway from a validated config and its live backends, counting into
    /// `metrics`.
    pub fn new(
        config: &Config,
        backends: &HashMap<String, Arc<Backend>>,
        auth: Arc<Authenticator>,
        audit: Option<Arc<AuditLog>>,
        cache: &CacheLayer,
        store: StoreAccess,
        metrics: Arc<Metrics>,
    ) -> Gateway {
        Gateway {
            router: Router::serving(
                &config.hosts,
                &config.groups,
                backends,
                &|host, route| RouteServices {
                    cache: cache.route(host, &route.name, route.cache.as_ref()),
                    rate_limit: route
                        .rate_limit
                        .map(|l| RateLimiter::new(format!("route:{host}:{}", route.name), l)),
                },
                &metrics.routing,
            ),
            auth,
            audit,
            presign_ttl: config.admin_access.presign_ttl,
            compression: config.compression.clone(),
            trusted_proxies: config.server.trusted_proxies.clone(),
            access_log: config.log.access_log,
            unmatched: metrics.routing.route(UNMATCHED, UNMATCHED),
            metrics,
            assets: store.lookups,
            limits: config.limits.clone(),
            client_limit: config
                .limits
                .client
                .map(|l| RateLimiter::new("client".into(), l)),
            shared_buckets: cache.redis().map(shared_buckets::RedisBuckets),
            uploads: store.uploads,
        }
    }

    /// `[limits]` and the route's `rate_limit` for this request: the error to answer with
    /// when one is exceeded.
    async fn over_limit(&self, ctx: &RequestCtx) -> Option<GatewayError> {
        let route = &ctx.matched.as_ref()?.route;
        let client = ctx.client.addr;
        let limits = [
            ("client", self.client_limit.as_ref()),
            ("route", route.attached.rate_limit.as_ref()),
        ];
        for (label, limiter) in limits {
            let Some(limiter) = limiter else { continue };
            let taken = match &self.shared_buckets {
                Some(buckets) if limiter.limit().shared => {
                    let fallbacks = &self.metrics.limits.rate_limit_fallbacks;
                    limits::shared::take(buckets, limiter, client, fallbacks).await
                }
                _ => limiter.take(client, Instant::now()),
            };
            if let Err(retry_after) = taken {
                self.metrics.limits.limited(label);
                return Some(GatewayError::RateLimited { retry_after });
            }
        }
        None
    }

    /// Writes an answer the gateway made, with the route's decorations; returns `Ok(true)`.
    async fn send(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        mut answer: Answer,
    ) -> Result<bool> {
        self.finish_header(session, ctx, &mut answer.header);
        write_answer(session, answer).await
    }

    /// Answers with an error and records it; returns `Ok(true)` (response sent).
    async fn reject(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        err: GatewayError,
    ) -> Result<bool> {
        if ctx.matched.is_none() {
            self.metrics
                .rejected
                .with_label_values(&[err.label()])
                .inc();
        }
        let answer = Answer::error(&err);
        ctx.outcome.error = Some(err);
        self.send(session, ctx, answer).await
    }

    /// Route decorations, `Cache-Status`, plus the per-response compression decision.
    fn finish_header(&self, session: &mut Session, ctx: &RequestCtx, resp: &mut ResponseHeader) {
        if let Some(m) = &ctx.matched {
            let backend = ctx.upstream.backend.as_deref();
            decorate::decorate(resp, &m.route.route, backend, session.req_header(), &m.path);
            if let Some(access) = &m.variant {
                media::variants::access::decorate(resp, access, kit::time::unix_secs());
            }
            steering_headers(resp, ctx, m.route.steering.header.as_ref());
        }
        let report = cache_report(session, ctx, resp.status.as_u16());
        if let Some(v) = report.header_value(resp.headers.get(CACHE_STATUS)) {
            let _ = resp.insert_header(CACHE_STATUS, v);
        }
        if !decorate::compressible(resp, &self.compression) {
            if let Some(c) = session
                .downstream_modules_ctx
                .get_mut::<ResponseCompression>()
            {
                if c.is_header_phase() {
                    c.adjust_level(0);
                }
            }
        }
    }

    /// Answers a CORS preflight if this is one; `None` when the request is not a preflight.
    async fn preflight(&self, session: &mut Session, ctx: &mut RequestCtx) -> Option<Result<bool>> {
        let req = session.req_header();
        if req.method != Method::OPTIONS {
            return None;
        }
        let policy = ctx.matched.as_ref()?.route.route.cors.as_ref()?;
        let text = |name| req.headers.get(name).and_then(|v| v.to_str().ok());
        let decision = cors::preflight(
            policy,
            text(header::ORIGIN)?,
            text(header::ACCESS_CONTROL_REQUEST_METHOD)?,
            text(header::ACCESS_CONTROL_REQUEST_HEADERS),
        );
        let varies = cors::varies_on_origin(policy);
        Some(match decision {
            cors::Preflight::Rejected => {
                self.reject(session, ctx, GatewayError::CorsRejected).await
            }
            cors::Preflight::Allowed(headers) => {
                let mut answer = Answer::no_content(headers);
                if varies {
                    kit::fields::append_vary(&mut answer.header, "Origin");
                }
                write_answer(session, answer).await
            }
        })
    }

    /// Checks the route's access policy; a grant is kept in the context, a denial is counted.
    fn authorize(&self, req: &RequestHeader, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
        let Some(m) = ctx.matched.as_mut() else {
            return Err(GatewayError::Internal);
        };
        let policy = &m.route.route.access;
        if policy.is_public() {
            return Ok(());
        }
        let host = request_host(req).map_err(GatewayError::from)?;
        let authority = host_as_sent(req);
        let access = AccessRequest {
            method: &req.method,
            host: &host::canonical(host),
            path: &m.path,
            raw_path: req.uri.path(),
            query: req.uri.query(),
            headers: &req.headers,
            authority: &authority,
            tls: ctx.client.tls,
            client: ctx.client.addr,
            now: kit::time::unix_secs(),
        };
        match self.auth.check(policy, &access) {
            Ok(grant) => {
                m.grant = grant;
                Ok(())
            }
            Err(denied) => {
                self.metrics.access.denied(&denied);
                if policy.schemes.contains(&Scheme::Admin) {
                    let result = format!("denied:{}", denied.reason.label());
                    self.audit("redirect", "-", &m.path, &result, &ctx.client);
                }
                Err(GatewayError::Denied(denied))
            }
        }
    }

    /// The access check of a variants route (a variant, or `/{hash}/original` where the route
    /// serves originals): the URL is checked against the route's
    /// allowlists first (400 costs no lookup), then the hash in the asset store (404 when
    /// nothing references it). A public asset needs no credential; otherwise the route's
    /// policy must grant one naming an owner (or an admin token), else 403; a route that
    /// takes no credentials hides private hashes (404).
    async fn authorize_variant(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<(), GatewayError> {
        let m = ctx.matched.as_ref().ok_or(GatewayError::Internal)?;
        let route = &m.route.route;
        let limits = route.variants.as_ref().ok_or(GatewayError::Internal)?;
        let accept = accept_of(req);
        let target = media::variants::spec::parse_target(
            &crate::backend::keys::origin_path(route, &m.path),
            limits,
            accept.as_deref(),
        )?;
        let assets = self.assets.as_ref().ok_or(GatewayError::StoreUnavailable)?;
        let access = assets
            .access(target.hash())
            .await?
            .ok_or(GatewayError::NotFound)?;
        let public_route = route.access.is_public();
        let mut established = media::variants::access::VariantAccess {
            public: access.public,
            expires_at: None,
            negotiated: target.negotiated(),
        };
        if !access.public {
            if public_route {
                return Err(GatewayError::NotFound);
            }
            self.authorize(req, ctx)?;
            let grant = ctx
                .matched
                .as_ref()
                .and_then(|m| m.grant.as_ref())
                .ok_or(GatewayError::Internal)?;
            if !media::variants::access::permits(&access, grant) {
                return Err(GatewayError::Forbidden);
            }
            established.expires_at = grant.expires_at;
        }
        if let Some(m) = ctx.matched.as_mut() {
            m.variant = Some(established);
        }
        Ok(())
    }

    /// Appends an admin action to the audit log (when one is configured).
    fn audit(&self, action: &str, token_id: &str, target: &str, result: &str, client: &ClientInfo) {
        if let Some(log) = &self.audit {
            log.action(token_id, action, target, result, client.addr);
        }
    }

    /// Answers an admin request with a redirect to a presigned URL for the object, which
    /// bypasses every cache; the action is audited either way.
    async fn admin_redirect(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        backend: &Backend,
    ) -> Result<bool> {
        let token_id = ctx
            .matched
            .as_ref()
            .and_then(|m| m.grant.as_ref())
            .and_then(|g| g.key_id.clone())
            .unwrap_or_default();
        let Some(Ask::Object(key)) = ctx.upstream.ask.clone() else {
            return self.reject(session, ctx, GatewayError::Internal).await;
        };
        let presigned = backend.presign_get(&key, false, self.presign_ttl).await;
        let answer = presigned
            .map_err(GatewayError::from)
            .and_then(|url| Answer::redirect(302, &url).ok_or(GatewayError::Internal));
        match answer {
            Ok(answer) => {
                self.audit("redirect", &token_id, &key, "ok", &ctx.client);
                write_answer(session, answer).await
            }
            Err(e) => {
                self.audit("redirect", &token_id, &key, e.label(), &ctx.client);
                self.reject(session, ctx, e).await
            }
        }
    }

    /// Runs the host's steering rules once: what this request will try, in order.
    fn steer(req: &RequestHeader, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
        let m = ctx.matched.as_ref().ok_or(GatewayError::Internal)?;
        let plan = m.route.plan(&facts(req, &m.path, &ctx.client));
        ctx.upstream.plan = Some(plan);
        Ok(())
    }

    /// Takes the plan's next backend and derives what it is asked. A write never goes to the
    /// backup, nor to a read-only backend a rule chose (405).
    fn choose_backend(
        ctx: &mut RequestCtx,
        method: &Method,
        query: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Arc<Backend>, GatewayError> {
        let m = ctx.matched.as_ref().ok_or(GatewayError::Internal)?;
        let plan = ctx.upstream.plan.as_ref().ok_or(GatewayError::Internal)?;
        let backend = plan
            .next(&ctx.upstream.tried, is_read(method))
            .ok_or(GatewayError::Unreachable)?;
        if backend.read_only() && !is_read(method) {
            return Err(GatewayError::MethodNotAllowed {
                allow: "GET, HEAD".to_string(),
            });
        }
        let ask = backend.ask(&m.route.route, &m.host, &m.path, query, accept)?;
        ctx.upstream.backend = Some(backend.clone());
        ctx.upstream.ask = Some(ask);
        ctx.upstream.connect_failures = 0;
        ctx.upstream.member = None;
        ctx.upstream.tried_members.clear();
        Ok(backend)
    }

    /// Gives up on the current backend for `reason`; true when the plan has another candidate
    /// for this request (`reads`: GET/HEAD may also go to the backup).
    fn give_up(ctx: &mut RequestCtx, reads: bool, reason: &'static str) -> bool {
        let up = &mut ctx.upstream;
        if let Some(b) = &up.backend {
            if !up.tried.iter().any(|t| Arc::ptr_eq(t, b)) {
                up.tried.push(b.clone());
            }
        }
        up.left_because = Some(reason);
        up.plan
            .as_ref()
            .is_some_and(|p| p.next(&up.tried, reads).is_some())
    }

    /// Group and failover metrics of a finished request.
    fn observe_steering(&self, ctx: &RequestCtx, status: u16, elapsed: std::time::Duration) {
        let (Some(plan), Some(backend), Some(m)) =
            (&ctx.upstream.plan, &ctx.upstream.backend, &ctx.matched)
        else {
            return;
        };
        if let Some(member) = plan.group().and_then(|g| g.member_of(backend)) {
            member.metrics.observe(status, elapsed);
        }
        if plan.is_backup(backend) {
            let reason = ctx.upstream.left_because.unwrap_or("unhealthy");
            self.metrics
                .routing
                .failovers
                .with_label_values(&[
                    &*m.route.host_label,
                    &m.route.route.name,
                    backend.name(),
                    reason,
                ])
                .inc();
        }
    }

    /// The lean hit path: a plain GET/HEAD (no `Range`, no conditions) whose response is fresh
    /// in the route's memory tier, without `Vary`, is answered here from the stored header
    /// and body, as pingora-cache would answer it (`Age`, HTTP/1.1, the route's decorations,
    /// `Cache-Status`) but without its per-hit key, lock and metadata work. Anything else
    /// returns `None` and goes through pingora-cache.
    async fn serve_fresh_hit(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Option<Result<bool>> {
        let cache = ctx.matched.as_ref()?.route.attached.cache.clone()?;
        let memory = cache.memory.as_ref()?;
        let req = session.req_header();
        let plain = is_read(&req.method)
            && !kit::conditional::REQUEST_CONDITIONS
                .iter()
                .any(|h| req.headers.contains_key(h));
        if !plain {
            return None;
        }
        let served_by = ctx.upstream.served_by()?;
        let key = key_parts(ctx, &served_by)?.entry_key();
        let now = SystemTime::now();
        let hit = memory.fresh(&key, now)?;
        cache.metrics.requests.inc();
        ctx.cache.looked_up = true;
        ctx.cache.tier = Some(cache::tier::TierName::Memory);
        ctx.cache.direct_hit_ttl = Some(hit.ttl(now));
        let mut header = hit.header().clone();
        header.set_version(http::Version::HTTP_11);
        let _ = header.insert_header(header::AGE, hit.age(now));
        // The whole body is at hand: it is framed by its length and nothing else (a stored
        // `Transfer-Encoding` beside a `Content-Length` would desynchronise the client).
        header.remove_header(&header::TRANSFER_ENCODING);
        let _ = header.insert_header(header::CONTENT_LENGTH, hit.body().len());
        let body = hit.body().clone();
        self.finish_header(session, ctx, &mut header);
        Some(write_answer(session, Answer { header, body }).await)
    }

    /// Sends the backend's own answer to the request (a directory's file); returns
    /// `Ok(true)` once answered.
    async fn serve_file(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        answer: std::result::Result<FileAnswer, crate::backend::OriginError>,
    ) -> Result<bool> {
        let FileAnswer { mut header, body } = match answer {
            Ok(answer) => answer,
            Err(e) => return self.reject(session, ctx, e.into()).await,
        };
        self.finish_header(session, ctx, &mut header);
        session
            .write_response_header(Box::new(header), body.is_none())
            .await
            .map_err(|e| e.into_down())?;
        if let Some(mut body) = body {
            while let Some(chunk) = body
                .next_chunk()
                .map_err(|e| Error::because(ErrorType::FileReadError, "read", e))?
            {
                session
                    .write_response_body(Some(chunk), body.done())
                    .await
                    .map_err(|e| e.into_down())?;
            }
        }
        Ok(true)
    }
}

/// Writes an answer's header and body, each once (no body for HEAD); returns `Ok(true)`.
/// A failed write is the client's (as Pingora's proxy loop marks its own downstream writes).
async fn write_answer(session: &mut Session, answer: Answer) -> Result<bool> {
    let Answer { header, body } = answer;
    let bodyless = body.is_empty() || session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(header), bodyless)
        .await
        .map_err(|e| e.into_down())?;
    if !bodyless {
        session
            .write_response_body(Some(body), true)
            .await
            .map_err(|e| e.into_down())?;
    }
    Ok(true)
}

/// GET and HEAD: the requests a backup may answer and a failed backend may be left for.
fn is_read(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// Whether a request has a body (a `Transfer-Encoding`, or a `Content-Length` other than 0).
fn carries_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(header::TRANSFER_ENCODING)
        || req
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes().iter().any(|b| *b != b'0'))
}

/// What steering rules and affinity keys see of a request.
fn facts<'a>(req: &'a RequestHeader, path: &'a str, client: &ClientInfo) -> RequestFacts<'a> {
    RequestFacts {
        method: &req.method,
        headers: &req.headers,
        path,
        query: req.uri.query(),
        client: client.addr,
    }
}

/// The group's sticky cookie for a client that had none, and the configured header naming who
/// served. Added to every response as it leaves (after any cache, never stored in one).
fn steering_headers(
    resp: &mut ResponseHeader,
    ctx: &RequestCtx,
    header: Option<&http::HeaderName>,
) {
    let Some(plan) = &ctx.upstream.plan else {
        return;
    };
    if let (Some(id), Some(group)) = (plan.new_cookie, plan.group()) {
        if let Some(cookie) = group.sticky.cookie(id, ctx.client.tls) {
            let _ = resp.append_header(header::SET_COOKIE, cookie);
        }
    }
    // Only with a configured header: naming who served allocates.
    if let Some(name) = header {
        if let Some(who) = ctx.upstream.served_by() {
            let _ = resp.insert_header(name.clone(), who.into_owned());
        }
    }
}

/// Every `Accept` header of the request as one list (RFC 9110 §5.3: several lines of a list
/// header mean their values joined by commas); `None` without one.
fn accept_of(req: &RequestHeader) -> Option<std::borrow::Cow<'_, str>> {
    let mut values = req
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    match values.next() {
        None => Some(first.into()),
        Some(second) => {
            let mut joined = format!("{first}, {second}");
            for v in values {
                joined.push_str(", ");
                joined.push_str(v);
            }
            Some(joined.into())
        }
    }
}

/// The Host header as sent, for the access log.
fn host_as_sent(req: &RequestHeader) -> std::borrow::Cow<'_, str> {
    match req.uri.authority() {
        Some(a) => a.as_str().into(),
        None => req
            .headers
            .get(header::HOST)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default(),
    }
}

fn allow_header(methods: &[Method], cors: bool) -> String {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if cors && !names.contains(&"OPTIONS") {
        names.push("OPTIONS");
    }
    names.join(", ")
}

/// The access-log `auth` field: the scheme that granted access, `denied:SCHEME:REASON`, or `-`.
fn access_label(ctx: &RequestCtx) -> std::borrow::Cow<'static, str> {
    if let Some(GatewayError::Denied(d)) = &ctx.outcome.error {
        return format!("denied:{}:{}", d.scheme, d.reason.label()).into();
    }
    match ctx.matched.as_ref().and_then(|m| m.grant.as_ref()) {
        Some(g) => g.scheme.name().into(),
        None => "-".into(),
    }
}

fn internal(what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InternalError, what)
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        modules.add_module(ResponseCompressionBuilder::enable(self.compression.level));
    }

    /// The steps of [`stages::STAGES`], in order, until one ends the request.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.run_stages(session, ctx).await
    }

    /// Turns the cache on for reads on a cached route.
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let Some(cache) = ctx
            .matched
            .as_ref()
            .and_then(|m| m.route.attached.cache.as_ref())
        else {
            return Ok(());
        };
        if !is_read(&session.req_header().method) || ctx.upstream.backend.is_none() {
            return Ok(());
        }
        cache.enable(&mut session.cache);
        cache.metrics.requests.inc();
        ctx.cache.looked_up = true;
        Ok(())
    }

    fn cache_key_callback(&self, _session: &Session, ctx: &mut RequestCtx) -> Result<CacheKey> {
        let served_by = ctx.upstream.served_by().unwrap_or_default();
        let mut key = key_parts(ctx, &served_by)
            .map(|parts| parts.cache_key())
            .ok_or_else(|| internal("no route or backend for the cache key"))?;
        if let Some(m) = &ctx.matched {
            // What a purge by URL or prefix finds the stored entry by.
            let url = cache::labels::url_label(&m.route.host_label, &m.path);
            key.extensions.insert(cache::labels::UrlLabel {
                url: url.into(),
                asked_at: ctx.started,
            });
        }
        Ok(key)
    }

    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        _meta: &CacheMeta,
        hit_handler: &mut HitHandler,
        _is_fresh: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<ForcedFreshness>> {
        let hit = hit_handler.as_any().downcast_ref::<TieredHit>();
        ctx.cache.tier = hit.map(TieredHit::tier);
        ctx.cache.fleet_wait = hit.and_then(TieredHit::waited);
        Ok(None)
    }

    /// RFC 9111 and the route's policy decide, after the backend's verdict and never-store
    /// rules were applied in [`Self::upstream_response_filter`].
    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        let Some(cache) = ctx
            .matched
            .as_ref()
            .and_then(|m| m.route.attached.cache.as_ref())
        else {
            return Ok(RespCacheable::Uncacheable(NoCacheReason::NeverEnabled));
        };
        let req = session.req_header();
        let forwards = ctx
            .upstream
            .backend
            .as_ref()
            .is_some_and(|b| b.forwards_client_headers());
        let now = SystemTime::now();
        let circumstances = Circumstances {
            gateway_error: ctx.outcome.error.is_some(),
            never_store: ctx.outcome.never_store,
            from_backup: ctx.upstream.on_backup(),
            authorization_forwarded: forwards && req.headers.contains_key(header::AUTHORIZATION),
            query: req.uri.query(),
            sent_at: ctx.upstream.sent_at.map(|sent| now - sent.elapsed()),
        };
        // A revalidation's 304: the stored response as all of its fields update it.
        let merged = ctx.cache.not_modified.take().and_then(|fresh| {
            let stored = session.cache.maybe_cache_meta()?.response_header();
            Some(cache::revalidation::apply_not_modified(stored, &fresh))
        });
        let resp = merged.as_ref().unwrap_or(resp);
        match admit::decide(&cache.policy, resp, now, circumstances) {
            Ok(meta) => {
                ctx.cache.stored_ttl = Some(seconds_left(meta.fresh_until(), now));
                ctx.cache.not_stored = None;
                Ok(RespCacheable::Cacheable(meta))
            }
            Err(reason) => {
                ctx.cache.stored_ttl = None;
                ctx.cache.not_stored = Some(reason);
                Ok(RespCacheable::Uncacheable(NoCacheReason::Custom(reason)))
            }
        }
    }

    /// Ranges of stored bodies are Pingora's to serve, after the header was read as RFC 9110
    /// §14 asks: a malformed one (or another unit) is ignored, so the whole body is sent
    /// (200), and one asking only for zero-length suffixes (`bytes=-0`) is unsatisfiable
    /// (416), whatever the body's length.
    fn range_header_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> RangeType {
        const MAX_RANGES: Option<usize> = Some(200);
        let syntax = session
            .req_header()
            .headers
            .get(header::RANGE)
            .map(|v| kit::range::syntax(v.as_bytes()));
        match syntax {
            Some(RangeSyntax::Ignored) => {
                session.req_header_mut().remove_header(&header::RANGE);
            }
            Some(RangeSyntax::Unsatisfiable) => {
                // A start no body reaches: Pingora answers 416 with `bytes */LENGTH`, after
                // its own checks (status, If-Range).
                let _ = session
                    .req_header_mut()
                    .insert_header(header::RANGE, format!("bytes={}-", usize::MAX));
            }
            Some(RangeSyntax::Ranges) | None => {}
        }
        range_header_filter(session.req_header(), resp, MAX_RANGES)
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        _ctx: &mut RequestCtx,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        cache::variance(meta, req)
    }

    /// Stale entries are served while one request revalidates (pingora asks only within the
    /// entry's `stale-while-revalidate` window) and when the backend failed or answered 5xx
    /// (within `stale-if-error`); never because the client went away.
    fn should_serve_stale(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
        error: Option<&Error>,
    ) -> bool {
        match error {
            None => true,
            Some(e) => e.esource() != &pingora::ErrorSource::Downstream,
        }
    }

    /// Connects to the current backend, or, once it was given up on, to the plan's next one;
    /// a backend with nothing left to connect to is given up on here.
    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let req = session.req_header();
        loop {
            let current = ctx
                .upstream
                .backend
                .clone()
                .filter(|b| !ctx.upstream.tried.iter().any(|t| Arc::ptr_eq(t, b)));
            let backend = match current {
                Some(b) => b,
                None => match Self::choose_backend(
                    ctx,
                    &req.method,
                    req.uri.query(),
                    accept_of(req).as_deref(),
                ) {
                    Ok(b) => b,
                    Err(e) => {
                        ctx.outcome.error = Some(e);
                        ctx.upstream.failed = true;
                        return Err(Error::explain(ErrorType::ConnectNoRoute, "no backend left"));
                    }
                },
            };
            let hash = match (backend.affinity(), &ctx.matched) {
                (Some(key), Some(m)) => key.hash(&facts(req, &m.path, &ctx.client)),
                _ => None,
            };
            let up = &ctx.upstream;
            match backend
                .peer(up.connect_failures, &up.tried_members, hash)
                .await
            {
                Ok((peer, member)) => {
                    ctx.upstream.member = member;
                    return Ok(Box::new(peer));
                }
                Err(e) => {
                    if !Self::give_up(ctx, is_read(&req.method), "unhealthy") {
                        ctx.outcome.error = Some(e.into());
                        ctx.upstream.failed = true;
                        return Err(Error::explain(
                            ErrorType::ConnectNoRoute,
                            "no address or member to connect to",
                        ));
                    }
                }
            }
        }
    }

    /// A refused connection moves on to the backend's next member or address, each at most
    /// once per request, before health checks have noticed; then to the plan's next backend.
    /// Nothing was sent, so this holds for every method.
    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let up = &mut ctx.upstream;
        up.connect_failures += 1;
        up.failed = true;
        let Some(backend) = up.backend.clone() else {
            return e;
        };
        backend.record(up.member, MemberOutcome::ConnectFailed);
        up.tried_members.extend(up.member);
        let reason = if e.etype() == &ErrorType::ConnectTimedout {
            "timeout"
        } else {
            "refused"
        };
        if backend.may_retry_connect(up.connect_failures, &up.tried_members)
            || Self::give_up(ctx, is_read(&session.req_header().method), reason)
        {
            e.set_retry(true);
        }
        e
    }

    /// An exchange that broke after connecting is asked again only when nothing reached the
    /// client and the request may be repeated (idempotent, body still buffered): on another
    /// member, then the plan's next backend; a pooled connection the origin had closed is
    /// simply opened again. A non-idempotent request is never sent twice.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        ctx.upstream.failed = true;
        if std::mem::take(&mut ctx.upstream.retry_elsewhere) {
            e.set_retry(true);
            return e;
        }
        let req = session.req_header();
        let replayable = req.method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && session.response_written().is_none()
            && e.esource() == &pingora::ErrorSource::Upstream;
        let reads = is_read(&req.method);
        let timeout = matches!(
            e.etype(),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout
        );
        if !replayable {
            e.set_retry(false);
        } else if client_reused && !timeout && !ctx.upstream.reused_retry_spent {
            // A pooled connection the origin had closed: opened again, once per request.
            ctx.upstream.reused_retry_spent = true;
            e.set_retry(true);
        } else if let Some(backend) = ctx.upstream.backend.clone() {
            let up = &mut ctx.upstream;
            backend.record(up.member, MemberOutcome::Broke { timeout });
            up.tried_members.extend(up.member);
            let reason = if timeout { "timeout" } else { "io" };
            let again =
                backend.has_untried_member(&up.tried_members) || Self::give_up(ctx, reads, reason);
            e.set_retry(again);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(backend), Some(ask)) = (&ctx.upstream.backend, &ctx.upstream.ask) else {
            return Err(internal("no backend chosen"));
        };
        let prepared = backend.prepare(upstream_request, ask, &ctx.client).await;
        if let Err(e) = prepared {
            ctx.outcome.error = Some(e.into());
            return Err(internal("cannot prepare the upstream request"));
        }
        if let Some(cache) = ctx
            .matched
            .as_ref()
            .and_then(|m| m.route.attached.cache.as_ref())
        {
            cache::forward::strip_unkeyed(upstream_request, &cache.policy.key_headers);
        }
        ctx.upstream.sent_at = Some(Instant::now());
        Ok(())
    }

    /// Applies the backend's verdict before anything can be cached: an error answer replaces
    /// the backend's header here and its body in [`Self::upstream_response_body_filter`].
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let (Some(backend), Some(ask)) = (ctx.upstream.backend.clone(), &ctx.upstream.ask) else {
            return Err(internal("no backend chosen"));
        };
        kit::hop::strip_response(upstream_response);
        let elapsed = ctx
            .upstream
            .sent_at
            .map(|s| s.elapsed())
            .unwrap_or_default();
        backend.metrics.upstream_took(elapsed);
        let raw_status = upstream_response.status.as_u16();
        backend.record(
            ctx.upstream.member,
            MemberOutcome::Answered {
                status: raw_status,
                elapsed,
            },
        );
        let replacement = match backend.judge(upstream_response, ask).await {
            Verdict::Replace(err) => Some(GatewayError::from(err)),
            Verdict::Pass => None,
        };
        let status = replacement
            .as_ref()
            .map_or(raw_status, GatewayError::status);
        let reads = is_read(&session.req_header().method);
        if status >= 500 && reads && Self::give_up(ctx, reads, "status_5xx") {
            ctx.upstream.retry_elsewhere = true;
            return Err(Error::explain(
                ErrorType::HTTPStatus(status),
                "backend answered 5xx; asking the next one",
            ));
        }
        ctx.outcome.never_store = cache::policy::never_store(
            &upstream_response.headers,
            backend.marks_degraded(upstream_response),
        );
        if let Some(err) = replacement {
            let answer = Answer::error(&err);
            *upstream_response = answer.header;
            if session.req_header().method != Method::HEAD {
                ctx.outcome.replacement = Some(answer.body);
            }
            ctx.outcome.error = Some(err);
        } else if status == 304 && session.cache.maybe_cache_meta().is_some() {
            // Pingora merges only a few of its fields; all of them update the stored response.
            ctx.cache.not_modified = Some(Box::new(upstream_response.clone()));
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        let limit = ctx
            .upstream
            .backend
            .as_ref()
            .and_then(|b| b.total_timeout());
        if let (Some(limit), Some(sent)) = (limit, ctx.upstream.sent_at) {
            if !end_of_stream && sent.elapsed() > limit {
                ctx.outcome.error = Some(GatewayError::Timeout);
                return Err(Error::explain(
                    ErrorType::ReadTimedout,
                    "the upstream exchange took longer than total_timeout",
                ));
            }
        }
        if ctx.outcome.replacement.is_some() {
            *body = if end_of_stream {
                ctx.outcome.replacement.take()
            } else {
                None
            };
        }
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        invalidate_after_unsafe(session, ctx, upstream_response, &self.router).await;
        if ctx.upstream.failed
            && matches!(
                session.cache.phase(),
                CachePhase::Stale | CachePhase::StaleUpdating
            )
        {
            // A stale answer for a failed upstream: Pingora will not keep this connection, so
            // the answer says `Connection: close` rather than promise a keep-alive.
            session.set_keepalive(None);
        }
        self.finish_header(session, ctx, upstream_response);
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let err = ctx
            .outcome
            .error
            .clone()
            .unwrap_or_else(|| GatewayError::from_proxy_failure(e));
        if err.is_backend_failure() {
            if let Some(backend) = &ctx.upstream.backend {
                backend.metrics.error(err.label());
            }
        }
        let code = err.status();
        // Pingora will not reuse this connection after a proxy failure: say so to the client.
        session.set_keepalive(None);
        if err != GatewayError::ClientGone && session.response_written().is_none() {
            if let Err(write_err) = self.reject(session, ctx, err).await {
                tracing::debug!(error = %write_err, "cannot write error response");
            }
        } else {
            ctx.outcome.error = Some(err);
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        crate::connections::head_deadline::request_done(session);
        let status = match &ctx.outcome.error {
            Some(GatewayError::ClientGone) => CLIENT_CLOSED_STATUS,
            _ => session
                .response_written()
                .map(|r| r.status.as_u16())
                .unwrap_or(0),
        };
        let elapsed = ctx.started.elapsed();
        let bytes = session.body_bytes_sent();
        let (route_metrics, route) = match &ctx.matched {
            Some(m) => (&m.route.metrics, m.route.route.name.as_str()),
            None => (&self.unmatched, UNMATCHED),
        };
        route_metrics.observe(status, elapsed, bytes as u64);
        let from_cache = observe_cache(session, ctx, elapsed);
        if !from_cache {
            self.observe_steering(ctx, status, elapsed);
        }
        if self.access_log {
            let req = session.req_header();
            tracing::info!(
                target: "assetgate::access",
                client = %ctx.client.addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                method = %req.method,
                host = %host_as_sent(req),
                path = %req.uri.path(),
                status,
                bytes,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                route,
                auth = %access_label(ctx),
                user = ctx.matched.as_ref().and_then(|m| m.grant.as_ref()).and_then(|g| g.user.as_deref()).unwrap_or("-"),
                backend = ctx.upstream.backend.as_ref().map(|b| b.name()).unwrap_or("-"),
                member = ctx.upstream.backend.as_ref().map(|b| b.member_label(ctx.upstream.member)).unwrap_or("-"),
                group = ctx.upstream.plan.as_ref().and_then(|p| p.group()).map(|g| &*g.name).unwrap_or("-"),
                rule = ctx.upstream.plan.as_ref().and_then(|p| p.rule.as_deref()).unwrap_or("-"),
                failover = if ctx.upstream.on_backup() { ctx.upstream.left_because.unwrap_or("unhealthy") } else { "-" },
                error = ctx.outcome.error.as_ref().map(|e| e.label()).or(e.map(|_| "proxy")).unwrap_or("-"),
                never_store = ctx.outcome.never_store.map(|n| n.label()).unwrap_or("-"),
                cache = if ctx.cache.looked_up { session.cache.phase().as_str() } else { "-" },
                tier = ctx.cache.tier.map(|t| t.label()).unwrap_or("-"),
            );
        }
    }
}
