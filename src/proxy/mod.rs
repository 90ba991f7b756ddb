//! The Pingora [`ProxyHttp`] implementation. Each phase is a few lines that call the module
//! owning the decision: [`crate::routing`] (where), [`crate::backend`] (how to ask),
//! [`decorate`] (what the client sees), [`crate::error`] (what failures look like).

pub mod cors;
mod ctx;
pub mod decorate;
mod dir_serve;
pub mod respond;

pub use ctx::RequestCtx;

use crate::backend::s3::{classify_status, ForbiddenCause, StatusVerdict};
use crate::backend::Backend;
use crate::config::{CompressionSettings, Config};
use crate::error::GatewayError;
use crate::metrics::{Metrics, UNMATCHED};
use crate::routing::path::{encode, normalise};
use crate::routing::{object_key, origin_path, Router};
use async_trait::async_trait;
use bytes::Bytes;
use http::{header, Method};
use pingora::http::ResponseHeader;
use pingora::modules::http::compression::{ResponseCompression, ResponseCompressionBuilder};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The gateway: an immutable snapshot of routing and backends.
pub struct Gateway {
    router: Router<Backend>,
    compression: CompressionSettings,
    access_log: bool,
    metrics: &'static Metrics,
}

impl Gateway {
    /// Builds the gateway from a validated config and its live backends.
    pub fn new(config: &Config, backends: &HashMap<String, Arc<Backend>>) -> Gateway {
        Gateway {
            router: Router::new(config, backends),
            compression: config.compression.clone(),
            access_log: config.log.access_log,
            metrics: Metrics::global(),
        }
    }

    /// Writes an error answer and records it; returns `Ok(true)` (response sent).
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
        let mut resp = respond::error_header(&err);
        self.finish_header(session, ctx, &mut resp);
        let head = session.req_header().method == Method::HEAD;
        ctx.error = Some(err.clone());
        session.write_response_header(Box::new(resp), head).await?;
        if !head {
            session
                .write_response_body(Some(respond::error_body(&err)), true)
                .await?;
        }
        Ok(true)
    }

    /// Route decorations plus the per-response compression decision.
    fn finish_header(&self, session: &mut Session, ctx: &RequestCtx, resp: &mut ResponseHeader) {
        if let Some(m) = &ctx.matched {
            decorate::decorate(resp, m, session.req_header(), &ctx.path);
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
        let policy = ctx.matched.as_ref()?.route.cors.clone()?;
        let origin = req.headers.get(header::ORIGIN)?.to_str().ok()?.to_string();
        let method = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)?
            .to_str()
            .ok()?
            .to_string();
        let requested = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Some(
            match cors::preflight(&policy, &origin, &method, requested.as_deref()) {
                cors::Preflight::Rejected => {
                    self.reject(session, ctx, GatewayError::CorsRejected).await
                }
                cors::Preflight::Allowed(headers) => {
                    let mut resp =
                        ResponseHeader::build(204, Some(headers.len() + 2)).expect("valid status");
                    for (k, v) in headers {
                        let _ = resp.insert_header(k, v);
                    }
                    if cors::varies_on_origin(&policy) {
                        decorate::append_vary(&mut resp, "Origin");
                    }
                    let _ = resp.insert_header(header::CONTENT_LENGTH, 0);
                    match session.write_response_header(Box::new(resp), true).await {
                        Ok(()) => Ok(true),
                        Err(e) => Err(e),
                    }
                }
            },
        )
    }
}

fn request_host(req: &pingora::http::RequestHeader) -> &str {
    req.headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default()
}

fn allow_header(methods: &[Method], cors: bool) -> String {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    if cors && !names.contains(&"OPTIONS") {
        names.push("OPTIONS");
    }
    names.join(", ")
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

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let path = match normalise(session.req_header().uri.path()) {
            Ok(p) => p,
            Err(e) => return self.reject(session, ctx, e.into()).await,
        };
        let Some(matched) = self.router.find(request_host(session.req_header()), &path) else {
            return self.reject(session, ctx, GatewayError::NoRoute).await;
        };
        ctx.matched = Some(matched.clone());
        ctx.path = path;
        if let Some(answer) = self.preflight(session, ctx).await {
            return answer;
        }
        let route = &matched.route;
        if !route.methods.contains(&session.req_header().method) {
            let allow = allow_header(&route.methods, route.cors.is_some());
            return self
                .reject(session, ctx, GatewayError::MethodNotAllowed { allow })
                .await;
        }
        match matched.backend.as_ref() {
            Backend::Dir(dir) => {
                ctx.key = object_key(route, dir.key_prefix(), &ctx.path);
                dir_serve::serve(self, session, ctx, dir).await
            }
            Backend::S3(s3) => {
                ctx.key = object_key(route, s3.key_prefix(), &ctx.path);
                if ctx.key.is_empty() || ctx.key.ends_with('/') {
                    // Never let an empty key turn into a bucket listing.
                    return self.reject(session, ctx, GatewayError::NotFound).await;
                }
                Ok(false)
            }
            Backend::Http(_) => {
                let mut target = encode(&origin_path(route, &ctx.path)).to_string();
                if let Some(q) = session.req_header().uri.query() {
                    target.push('?');
                    target.push_str(q);
                }
                ctx.key = target;
                Ok(false)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let backend = ctx.backend()?;
        let peer = match backend.as_ref() {
            Backend::S3(s3) => s3.peer().await.map_err(|e| {
                ctx.error = Some(e.into());
                Error::explain(ErrorType::ConnectError, "s3 endpoint unavailable")
            })?,
            Backend::Http(pool) => pool.peer().ok_or_else(|| {
                ctx.error = Some(GatewayError::Unreachable);
                Error::explain(ErrorType::ConnectNoRoute, "no healthy origin member")
            })?,
            Backend::Dir(_) => {
                return Err(Error::explain(
                    ErrorType::InternalError,
                    "dir is served locally",
                ))
            }
        };
        Ok(Box::new(peer))
    }

    /// A member that refuses connections is skipped: the next healthy member is tried, at most
    /// once per member, before health checks have noticed.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(Backend::Http(pool)) = ctx.matched.as_ref().map(|m| m.backend.as_ref()) {
            if ctx.connect_retries + 1 < pool.member_count() {
                ctx.connect_retries += 1;
                e.set_retry(true);
            }
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let backend = ctx.backend()?;
        match backend.as_ref() {
            Backend::S3(s3) => {
                if let Err(e) = s3.prepare_request(upstream_request, &ctx.key).await {
                    tracing::error!(backend = %s3.name, error = %e, "cannot prepare S3 request");
                    ctx.error = Some(e.into());
                    return Err(Error::explain(
                        ErrorType::InternalError,
                        "cannot sign request",
                    ));
                }
            }
            Backend::Http(pool) => {
                let client_ip = session
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map(|a| a.ip().to_string());
                pool.prepare_request(upstream_request, &ctx.key, client_ip, ctx.tls)?;
            }
            Backend::Dir(_) => {}
        }
        ctx.upstream_started = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let backend = ctx.backend()?;
        if let Some(started) = ctx.upstream_started {
            self.metrics
                .upstream_duration
                .with_label_values(&[backend.name()])
                .observe(started.elapsed().as_secs_f64());
        }
        let Backend::S3(s3) = backend.as_ref() else {
            return Ok(());
        };
        let status = upstream_response.status.as_u16();
        let failure = match classify_status(status) {
            StatusVerdict::Pass => return Ok(()),
            StatusVerdict::Fail(e) => e,
            StatusVerdict::Forbidden => match s3.forbidden_cause().await {
                ForbiddenCause::CredentialsRejected => GatewayError::CredentialsRejected,
                ForbiddenCause::ObjectDenied => {
                    self.metrics
                        .backend_errors
                        .with_label_values(&[&s3.name, "access_denied"])
                        .inc();
                    s3.denied_error()
                }
            },
        };
        let request_id = upstream_response
            .headers
            .get("x-amz-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        if status == 404 {
            // Missing keys are routine; keep them out of the default log level.
            tracing::debug!(backend = %s3.name, request_id, key = %ctx.key, "no such key");
        } else {
            tracing::warn!(
                backend = %s3.name, status, request_id, key = %ctx.key, answer = failure.status(),
                "bucket answered with an error"
            );
        }
        if !matches!(failure, GatewayError::NotFound | GatewayError::Forbidden) {
            self.metrics
                .backend_errors
                .with_label_values(&[&s3.name, failure.label()])
                .inc();
        }
        *upstream_response = respond::error_header(&failure);
        if session.req_header().method != Method::HEAD {
            ctx.replacement = Some(respond::error_body(&failure));
        }
        ctx.error = Some(failure);
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.finish_header(session, ctx, upstream_response);
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if ctx.replacement.is_some() {
            *body = if end_of_stream {
                ctx.replacement.take()
            } else {
                None
            };
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let err = ctx
            .error
            .clone()
            .unwrap_or_else(|| GatewayError::from_proxy_failure(e));
        if let Some(b) = ctx.matched.as_ref().map(|m| m.backend.clone()) {
            if matches!(
                err,
                GatewayError::Unreachable
                    | GatewayError::Timeout
                    | GatewayError::BackendFailed
                    | GatewayError::CredentialsRejected
            ) {
                self.metrics
                    .backend_errors
                    .with_label_values(&[b.name(), err.label()])
                    .inc();
            }
        }
        let code = err.status();
        // Pingora will not reuse this connection after a proxy failure: say so to the client.
        session.set_keepalive(None);
        if session.response_written().is_none() {
            if let Err(write_err) = self.reject(session, ctx, err).await {
                tracing::debug!(error = %write_err, "cannot write error response");
            }
        } else {
            ctx.error = Some(err);
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let (host, route) = match &ctx.matched {
            Some(m) => (m.host_label.as_ref(), m.route.name.as_str()),
            None => (UNMATCHED, UNMATCHED),
        };
        let elapsed = ctx.started.elapsed();
        let bytes = session.body_bytes_sent();
        let status_label = status.to_string();
        self.metrics
            .requests
            .with_label_values(&[host, route, &status_label])
            .inc();
        self.metrics
            .request_duration
            .with_label_values(&[host, route])
            .observe(elapsed.as_secs_f64());
        self.metrics
            .response_bytes
            .with_label_values(&[host, route])
            .inc_by(bytes as u64);
        if self.access_log {
            let req = session.req_header();
            tracing::info!(
                target: "assetgate::access",
                method = %req.method,
                host = %request_host(req),
                path = %req.uri.path(),
                status,
                bytes,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                route,
                backend = ctx.matched.as_ref().map(|m| m.backend.name()).unwrap_or("-"),
                error = ctx.error.as_ref().map(|e| e.label()).or(e.map(|_| "proxy")).unwrap_or("-"),
            );
        }
    }
}
