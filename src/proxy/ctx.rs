//! Per-request state shared by the proxy phases, in four parts: who is asking ([`ClientInfo`]),
//! what was matched ([`Matched`]), what will be asked and of whom ([`Upstream`]), and how it
//! ended ([`Outcome`]).

use crate::backend::{Ask, Backend};
use crate::error::GatewayError;
use access::Grant;
use bytes::Bytes;
use cache::policy::NeverStore;
use kit::client::ClientInfo;
use routing::{Plan, RouteMatch};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// State carried through one request.
pub struct RequestCtx {
    /// When the request arrived.
    pub started: Instant,
    /// The client, as derived from the peer and trusted X-Forwarded-For.
    pub client: ClientInfo,
    /// The route and normalised path, once matched.
    pub matched: Option<Matched>,
    /// The backend chosen and what it is asked.
    pub upstream: Upstream,
    /// The error answered with, and a replacement body.
    pub outcome: Outcome,
    /// What the shared cache did.
    pub cache: CacheCtx,
}

/// What the shared cache did for one request (read by `Cache-Status`, metrics and the log).
#[derive(Default)]
pub struct CacheCtx {
    /// The route is cached and this request looked its key up.
    pub looked_up: bool,
    /// The tier a hit came from.
    pub tier: Option<cache::tier::TierName>,
    /// The response was admitted, fresh for this many seconds.
    pub stored_ttl: Option<i64>,
    /// Why the response was not stored.
    pub not_stored: Option<&'static str>,
    /// How long this request waited for another gateway's fill before a tier answered.
    pub fleet_wait: Option<std::time::Duration>,
    /// A fresh memory entry answered directly, with this many seconds of freshness left
    /// (pingora-cache was not involved).
    pub direct_hit_ttl: Option<i64>,
    /// The values of the route's `key_headers`, framed for the key (empty without any).
    pub keyed_headers: String,
    /// The backend's `304` to a revalidation, for its fields to update the stored response.
    pub not_modified: Option<Box<pingora::http::ResponseHeader>>,
}

/// What the gateway attaches to each route when it compiles the routing table.
pub struct RouteServices {
    /// The route's cache tiers and policy (`None`: not cached).
    pub cache: Option<Arc<cache::RouteCache>>,
    /// The route's rate limit and its buckets (`None`: unlimited).
    pub rate_limit: Option<limits::RateLimiter>,
}

/// A route as the gateway serves it.
pub type ServedRoute = RouteMatch<Backend, crate::config::Route, RouteServices>;

/// What the router matched.
pub struct Matched {
    /// The route (with its host label, target, metrics, cache and rate limit).
    pub route: ServedRoute,
    /// The normalised request path (decoded once; see `kit::path`).
    pub path: String,
    /// The host the request named, canonical (lower case, no port, no trailing dot): what
    /// an origin is told the client asked for, and so part of an origin's cache key.
    pub host: String,
    /// What the route's access policy established (`None` on a public route).
    pub grant: Option<Grant>,
    /// On a variants route: what the asset store said about the hash.
    pub variant: Option<media::variants::access::VariantAccess>,
}

/// The backend side of a request.
#[derive(Default)]
pub struct Upstream {
    /// What the request will try, in order (steering rules, group, backup).
    pub plan: Option<Plan<Backend>>,
    /// The backend chosen from the plan.
    pub backend: Option<Arc<Backend>>,
    /// Backends this request gave up on (refused, unhealthy, timed out, 5xx); the plan picks
    /// from the rest. Empty, and never allocated, on the success path.
    pub tried: Vec<Arc<Backend>>,
    /// Why the last backend was given up on (`unhealthy`, `refused`, `timeout`, `io`,
    /// `status_5xx`): the failover reason when the backup answers.
    pub left_because: Option<&'static str>,
    /// What the chosen backend is asked.
    pub ask: Option<Ask>,
    /// Failed connection attempts to the chosen backend so far.
    pub connect_failures: usize,
    /// The pool member connected to (http backends).
    pub member: Option<usize>,
    /// Pool members of the chosen backend this request already used.
    pub tried_members: Vec<usize>,
    /// Set when an upstream answer was refused in favour of the next backend (5xx on a read),
    /// so the proxy retries instead of failing.
    pub retry_elsewhere: bool,
    /// When the upstream request was sent.
    pub sent_at: Option<Instant>,
    /// A broken exchange on a reused (pooled) connection was already asked again once: the
    /// next one is not, whatever the origin does (an origin that closes every connection
    /// without answering gets at most two attempts per member, never a storm).
    pub reused_retry_spent: bool,
    /// An upstream attempt of this request failed (refused, broken, timed out): a stale
    /// answer served for it leaves the client connection to be closed, and says so.
    pub failed: bool,
}

impl Upstream {
    /// Who served, as the steering header shows it and the cache key holds it:
    /// `group/backend` when a group served, the backend's name otherwise.
    pub fn served_by(&self) -> Option<Cow<'_, str>> {
        let backend = self.backend.as_ref()?;
        let group = self
            .plan
            .as_ref()
            .filter(|p| !p.is_backup(backend))
            .and_then(|p| p.group());
        Some(match group {
            Some(g) => Cow::Owned(served_label(Some(&g.name), backend.name())),
            None => Cow::Borrowed(backend.name()),
        })
    }

    /// Every `served_by` the plan's target can produce: the one serving, and each member of
    /// its group (a write invalidates the entries of all of them).
    pub fn served_by_all(&self) -> Vec<String> {
        let mut out: Vec<String> = self.served_by().into_iter().map(Cow::into_owned).collect();
        if let Some(g) = self.plan.as_ref().and_then(|p| p.group()) {
            for b in g.backends() {
                let label = served_label(Some(&g.name), b.name());
                if !out.contains(&label) {
                    out.push(label);
                }
            }
        }
        out
    }

    /// Whether the route's backup is the backend serving.
    pub fn on_backup(&self) -> bool {
        match (&self.plan, &self.backend) {
            (Some(p), Some(b)) => p.is_backup(b),
            _ => false,
        }
    }
}

/// `group/backend`, or the backend's name outside a group.
fn served_label(group: Option<&str>, backend: &str) -> String {
    match group {
        Some(g) => format!("{g}/{backend}"),
        None => backend.to_string(),
    }
}

/// How the request ended.
#[derive(Default)]
pub struct Outcome {
    /// The error the gateway answered with, if any.
    pub error: Option<GatewayError>,
    /// The gateway's body replacing a backend's error body; sent at the backend's end of stream.
    pub replacement: Option<Bytes>,
    /// Why the response must never be stored in a shared cache tier (read by the cache's
    /// admission; logged as `never_store`).
    pub never_store: Option<NeverStore>,
}

impl RequestCtx {
    /// Fresh state for a new request.
    pub fn new() -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            client: ClientInfo::default(),
            matched: None,
            upstream: Upstream::default(),
            outcome: Outcome::default(),
            cache: CacheCtx::default(),
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
