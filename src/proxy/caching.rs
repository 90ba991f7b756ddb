//! The proxy's side of the shared cache: the request's cache key, `Cache-Status`, the cache
//! metrics of a finished request, and invalidation after writes. Pure functions of the
//! session and the request context; the cache itself lives in [`cache`].

use super::{is_read, RequestCtx, RouteServices};
use crate::backend::{Ask, Backend};
use crate::config::Route;
use cache::invalidation::named_targets;
use cache::key::KeyParts;
use cache::status::{seconds_left, Report};
use kit::path::normalise;
use pingora::cache::CachePhase;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use routing::Router;
use std::time::SystemTime;

/// What the cache key of this request is made of, for the backend label `served_by`: all of
/// what the backend is sent that can change its answer (see [`cache::key`]).
pub(super) fn key_parts<'a>(ctx: &'a RequestCtx, served_by: &'a str) -> Option<KeyParts<'a>> {
    key_parts_of(ctx, ctx.upstream.ask.as_ref()?, served_by)
}

/// The key parts of `ask`, made for this request's route, for `served_by`.
fn key_parts_of<'a>(ctx: &'a RequestCtx, ask: &'a Ask, served_by: &'a str) -> Option<KeyParts<'a>> {
    let m = ctx.matched.as_ref()?;
    let (object, authority, query) = match ask {
        Ask::Object(key) => (key.as_str(), "", ""),
        Ask::Origin { path, query, host } => (
            path.as_str(),
            host.as_str(),
            query.as_deref().unwrap_or_default(),
        ),
        Ask::Variant { path, .. } => (path.as_str(), "", ""),
    };
    Some(KeyParts {
        host: &m.route.host_label,
        route: &m.route.route.name,
        served_by,
        object,
        authority,
        query,
        headers: &ctx.cache.keyed_headers,
    })
}

/// RFC 9111 §4.4: a successful unsafe request (POST, PUT, DELETE, ...) invalidates what the
/// cache holds for its target URI, and for the URIs its response's `Location` and
/// `Content-Location` name on the same host and route, in every tier, for every backend of
/// the route's group. Removing the entry without variance retires its `Vary` variants too:
/// pingora-cache takes the primary entry's age as the floor for every variant found after it.
pub(super) async fn invalidate_after_unsafe(
    session: &Session,
    ctx: &RequestCtx,
    resp: &ResponseHeader,
    router: &Router<Backend, Route, RouteServices>,
) {
    let method = &session.req_header().method;
    let status = resp.status.as_u16();
    if method.is_safe() || status >= 400 || ctx.upstream.sent_at.is_none() {
        return;
    }
    let (Some(m), Some(backend)) = (ctx.matched.as_ref(), ctx.upstream.backend.as_ref()) else {
        return;
    };
    let Some(cache) = m.route.attached.cache.as_ref() else {
        return;
    };
    let request_path = session.req_header().uri.path();
    let named: Vec<Ask> = named_targets(&resp.headers, &m.host, request_path)
        .into_iter()
        .filter_map(|target| {
            let path = normalise(&target.path).ok()?;
            let route = router.find(&m.host, &path)?;
            (route.route.name == m.route.route.name).then_some(())?;
            backend
                .ask(
                    &m.route.route,
                    &m.host,
                    &path,
                    target.query.as_deref(),
                    None,
                )
                .ok()
        })
        .collect();
    let asks = ctx.upstream.ask.iter().chain(named.iter());
    for ask in asks {
        for served_by in ctx.upstream.served_by_all() {
            if let Some(parts) = key_parts_of(ctx, ask, &served_by) {
                cache.storage.remove(&parts.entry_key()).await;
            }
        }
    }
}

/// Records a cached route's cache metrics; true when a tier answered (nothing was asked of
/// the backend for this request, or the backend failed and stale was served).
pub(super) fn observe_cache(
    session: &Session,
    ctx: &RequestCtx,
    elapsed: std::time::Duration,
) -> bool {
    let Some(cache) = ctx
        .matched
        .as_ref()
        .and_then(|m| m.route.attached.cache.as_ref())
    else {
        return false;
    };
    if !ctx.cache.looked_up {
        return false;
    }
    let m = &cache.metrics;
    if ctx.cache.direct_hit_ttl.is_some() {
        m.hits.inc();
        return true;
    }
    if let Some(waited) = session.cache.lock_duration().or(ctx.cache.fleet_wait) {
        m.lock_waits.inc();
        m.lock_wait.observe(waited.as_secs_f64());
    }
    if let Some(key) = session.cache.maybe_cache_key() {
        cache.storage.abandon(key);
    }
    let phase = session.cache.phase();
    let from_cache = matches!(
        phase,
        CachePhase::Hit | CachePhase::StaleUpdating | CachePhase::Stale
    );
    if from_cache {
        m.hits.inc();
    } else if ctx.cache.stored_ttl.is_some()
        && matches!(phase, CachePhase::Miss | CachePhase::Expired)
    {
        m.stored.inc();
        m.fill.observe(elapsed.as_secs_f64());
    } else if let Some(reason) = ctx.cache.not_stored {
        m.not_stored(reason);
    } else if let CachePhase::Disabled(reason) = phase {
        m.not_stored(reason.as_str());
    }
    from_cache
}

/// RFC 9211's response header.
pub(super) const CACHE_STATUS: &str = "cache-status";

/// What the cache did for this request, as `Cache-Status` reports it.
pub(super) fn cache_report<'a>(session: &Session, ctx: &'a RequestCtx, status: u16) -> Report<'a> {
    let cache = &session.cache;
    let remaining = || {
        cache
            .maybe_cache_meta()
            .map_or(0, |m| seconds_left(m.fresh_until(), SystemTime::now()))
    };
    let forward = |why, status| Report::Forward {
        why,
        status,
        stored_ttl: ctx.cache.stored_ttl,
        collapsed: false,
        not_stored: ctx.cache.not_stored,
    };
    if let Some(ttl) = ctx.cache.direct_hit_ttl {
        return Report::Hit {
            tier: ctx.cache.tier,
            ttl,
        };
    }
    match cache.phase() {
        CachePhase::Hit if cache.lock_duration().is_some() || ctx.cache.fleet_wait.is_some() => {
            Report::Forward {
                why: "uri-miss",
                status: cache
                    .maybe_cache_meta()
                    .map(|m| m.response_header().status.as_u16()),
                stored_ttl: None,
                collapsed: true,
                not_stored: None,
            }
        }
        CachePhase::Hit | CachePhase::StaleUpdating | CachePhase::Stale => Report::Hit {
            tier: ctx.cache.tier,
            ttl: remaining(),
        },
        CachePhase::Miss => forward("uri-miss", upstream_status(ctx, status)),
        CachePhase::Expired => forward("stale", upstream_status(ctx, status)),
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => forward("stale", Some(304)),
        CachePhase::Disabled(reason) if ctx.cache.looked_up => Report::Forward {
            why: "uri-miss",
            status: upstream_status(ctx, status),
            stored_ttl: None,
            collapsed: false,
            not_stored: ctx.cache.not_stored.or(Some(reason.as_str())),
        },
        _ => Report::Bypass {
            detail: bypass_reason(session, ctx),
        },
    }
}

/// The backend's status, when the response came from one (not from the gateway).
fn upstream_status(ctx: &RequestCtx, status: u16) -> Option<u16> {
    ctx.upstream.sent_at.map(|_| status)
}

/// Why the cache was not involved.
fn bypass_reason(session: &Session, ctx: &RequestCtx) -> &'static str {
    match (&ctx.matched, &ctx.outcome.error) {
        (_, Some(e)) if ctx.upstream.sent_at.is_none() => e.label(),
        (None, _) => "no-route",
        (Some(m), _) if m.route.attached.cache.is_none() => "uncached-route",
        _ if !is_read(&session.req_header().method) => "method",
        _ => "request",
    }
}
