//! The request path before the cache and the backend, as the ordered list of steps a request
//! passes ([`STAGES`]). Each step either lets the request go on or ends it — with a refusal
//! (answered from the one status table) or with an answer it wrote. The decisions are the
//! domains'; a step only asks the module that owns one and records what it said in the
//! request's context for the steps after it.

use super::{accept_of, allow_header, carries_body, is_read, Gateway, Matched, RequestCtx};
use crate::error::GatewayError;
use access::Scheme;
use kit::client::ClientInfo;
use kit::host::{self, request_host};
use kit::path::normalise;
use pingora::prelude::*;
use pingora::proxy::Session;

/// One step of the request path, in the order of [`STAGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Who the client is (`kit::client`), and whether its request head is within `[limits]`.
    Client,
    /// Host (`kit::host`) and path (`kit::path`) to a route (`routing`).
    Route,
    /// The client's and the route's rate limits (`limits`).
    RateLimits,
    /// A CORS preflight is answered (`proxy::cors`); browsers send it without credentials.
    Preflight,
    /// The route's methods; on a cached route, no body on a read, and the keyed headers.
    Methods,
    /// The route's access policy (`access`); on a variants route, the asset store's.
    Access,
    /// On an upload route, a `PUT`/`POST` body becomes the credential's user's asset
    /// (`media::assets::ingest`), answered here.
    Upload,
    /// Steering rules and groups (`routing`): the backend, and what it is asked (`backend`).
    Steering,
    /// An admin token is answered with a presigned redirect to the object.
    AdminRedirect,
    /// A fresh entry of the route's memory tier is answered directly (`cache`).
    FreshHit,
    /// A backend that answers without a connection (a directory on an uncached route) does.
    LocalAnswer,
}

/// Every request passes these steps in this order until one ends it.
pub const STAGES: [Stage; 11] = [
    Stage::Client,
    Stage::Route,
    Stage::RateLimits,
    Stage::Preflight,
    Stage::Methods,
    Stage::Access,
    Stage::Upload,
    Stage::Steering,
    Stage::AdminRedirect,
    Stage::FreshHit,
    Stage::LocalAnswer,
];

/// What a step decided.
pub enum Flow {
    /// The request goes on to the next step.
    Next,
    /// The request is refused with this error's answer.
    Refuse(GatewayError),
    /// The step wrote an answer (`true`), or the request goes to the cache and the backend
    /// with nothing more to decide here (`false`).
    Done(bool),
}

impl Gateway {
    /// Runs the request through [`STAGES`]: `Ok(true)` once an answer was written.
    pub(super) async fn run_stages(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        for stage in STAGES {
            match self.stage(stage, session, ctx).await? {
                Flow::Next => {}
                Flow::Refuse(e) => return self.reject(session, ctx, e).await,
                Flow::Done(answered) => return Ok(answered),
            }
        }
        Ok(false)
    }

    async fn stage(
        &self,
        stage: Stage,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Flow> {
        Ok(match stage {
            Stage::Client => self.client(session, ctx),
            Stage::Route => self.route(session, ctx),
            Stage::RateLimits => match self.over_limit(ctx).await {
                Some(e) => Flow::Refuse(e),
                None => Flow::Next,
            },
            Stage::Preflight => match self.preflight(session, ctx).await {
                Some(answered) => Flow::Done(answered?),
                None => Flow::Next,
            },
            Stage::Methods => Self::methods(session, ctx),
            Stage::Access => self.access(session, ctx).await,
            Stage::Upload => return self.upload(session, ctx).await,
            Stage::Steering => Self::steering(session, ctx),
            Stage::AdminRedirect => return self.admin(session, ctx).await,
            Stage::FreshHit => match self.serve_fresh_hit(session, ctx).await {
                Some(answered) => Flow::Done(answered?),
                None => Flow::Next,
            },
            Stage::LocalAnswer => return self.local_answer(session, ctx).await,
        })
    }

    fn client(&self, session: &mut Session, ctx: &mut RequestCtx) -> Flow {
        crate::connections::head_deadline::head_received(session);
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let req = session.req_header();
        ctx.client = ClientInfo::derive(peer, &req.headers, &self.trusted_proxies, tls);
        let (head_bytes, head_fields) = limits::head_size(req.raw_path(), &req.headers);
        if head_bytes > self.limits.header_bytes || head_fields > self.limits.header_count {
            return Flow::Refuse(GatewayError::HeadersTooLarge);
        }
        Flow::Next
    }

    fn route(&self, session: &mut Session, ctx: &mut RequestCtx) -> Flow {
        let req = session.req_header();
        let found = request_host(req)
            .map_err(GatewayError::from)
            .and_then(|host| {
                let path = normalise(req.uri.path())?;
                Ok((self.router.find(host, &path), path, host))
            });
        let (route, path, host) = match found {
            Ok((Some(route), path, host)) => (route, path, host::canonical(host).into_owned()),
            Ok((None, _, _)) => return Flow::Refuse(GatewayError::NoRoute),
            Err(e) => return Flow::Refuse(e),
        };
        ctx.matched = Some(Matched {
            route,
            path,
            host,
            grant: None,
            variant: None,
        });
        Flow::Next
    }

    fn methods(session: &mut Session, ctx: &mut RequestCtx) -> Flow {
        let Some(m) = ctx.matched.as_ref() else {
            return Flow::Refuse(GatewayError::Internal);
        };
        let route = m.route.clone();
        let methods = &route.route.methods;
        if !methods.contains(&session.req_header().method) {
            let allow = allow_header(methods, route.route.cors.is_some());
            return Flow::Refuse(GatewayError::MethodNotAllowed { allow });
        }
        if let Some(cache) = &route.attached.cache {
            let req = session.req_header();
            if is_read(&req.method) && carries_body(req) {
                // Its body is unread: the connection cannot carry another request.
                session.set_keepalive(None);
                return Flow::Refuse(GatewayError::BodyOnRead);
            }
            if !cache.policy.key_headers.is_empty() {
                ctx.cache.keyed_headers =
                    cache::key::keyed_headers(&req.headers, &cache.policy.key_headers);
            }
        }
        Flow::Next
    }

    async fn access(&self, session: &mut Session, ctx: &mut RequestCtx) -> Flow {
        let variants = ctx
            .matched
            .as_ref()
            .is_some_and(|m| m.route.route.variants.is_some());
        let authorized = if variants {
            self.authorize_variant(session.req_header(), ctx).await
        } else {
            self.authorize(session.req_header(), ctx)
        };
        match authorized {
            Ok(()) => Flow::Next,
            Err(e) => Flow::Refuse(e),
        }
    }

    /// An upload route's `PUT`/`POST`: the body streamed into the store as the asset of the
    /// user the credential names (module and visibility from the route, the file name from
    /// the path's last segment) → `201` with the upload's answer.
    async fn upload(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let Some(m) = ctx.matched.as_ref() else {
            return Ok(Flow::Next);
        };
        let Some(upload) = m.route.route.upload.clone() else {
            return Ok(Flow::Next);
        };
        let method = &session.req_header().method;
        if *method != http::Method::PUT && *method != http::Method::POST {
            return Ok(Flow::Next);
        }
        // Refused before the body is read whole: the connection cannot carry another request.
        let Some(api) = self.uploads.clone() else {
            session.set_keepalive(None);
            return Ok(Flow::Refuse(GatewayError::StoreUnavailable));
        };
        let Some(user) = m.grant.as_ref().and_then(|g| g.user.clone()) else {
            session.set_keepalive(None);
            return Ok(Flow::Refuse(GatewayError::UploadNeedsUser));
        };
        let name = m
            .path
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("upload")
            .to_string();
        let who = media::assets::ingest::Ownership {
            owner: user,
            module: upload.module,
            visibility: upload.visibility,
        };
        let mut body = crate::asset_api::RequestBody(session.as_downstream_mut());
        match api.upload_as(&mut body, &who, &name, "route").await {
            Ok(answer) => {
                let answer = super::respond::Answer::json(201, answer.to_string());
                Ok(Flow::Done(self.send(session, ctx, answer).await?))
            }
            Err(e) => {
                session.set_keepalive(None);
                Ok(Flow::Refuse(e.into()))
            }
        }
    }

    fn steering(session: &mut Session, ctx: &mut RequestCtx) -> Flow {
        let req = session.req_header();
        let accept = accept_of(req);
        let chosen = Self::steer(req, ctx).and_then(|()| {
            Self::choose_backend(ctx, &req.method, req.uri.query(), accept.as_deref())
        });
        match chosen {
            Ok(_) => Flow::Next,
            Err(e) => Flow::Refuse(e),
        }
    }

    async fn admin(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        let admin = ctx
            .matched
            .as_ref()
            .and_then(|m| m.grant.as_ref())
            .is_some_and(|g| g.scheme == Scheme::Admin);
        if !admin {
            return Ok(Flow::Next);
        }
        let Some(backend) = ctx.upstream.backend.clone() else {
            return Ok(Flow::Refuse(GatewayError::Internal));
        };
        Ok(Flow::Done(
            self.admin_redirect(session, ctx, &backend).await?,
        ))
    }

    async fn local_answer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Flow> {
        // A cached route reaches the gateway's own content through the in-process origin
        // (proxied, so stored like any backend's answer); an uncached one is answered here.
        let cached = ctx
            .matched
            .as_ref()
            .is_some_and(|m| m.route.attached.cache.is_some());
        let (Some(backend), Some(ask)) = (&ctx.upstream.backend, &ctx.upstream.ask) else {
            return Ok(Flow::Done(false));
        };
        if cached {
            return Ok(Flow::Done(false));
        }
        let answer = backend.answer_here(session.req_header(), ask);
        match answer {
            Some(answer) => Ok(Flow::Done(self.serve_file(session, ctx, answer).await?)),
            None => Ok(Flow::Done(false)),
        }
    }
}
