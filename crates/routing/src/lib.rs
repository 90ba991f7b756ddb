//! Host and path routing and steering, compiled once from the config.
//!
//! [`Router::find`] takes the request's host (already checked by [`kit::host`]) and its normalised
//! path (see [`kit::path`]) and returns the first matching route of the matching host. Hosts are
//! matched exact name first, then the longest wildcard suffix, then `*`. A route points at a
//! [`Target`] (one backend or a [`group::Group`]) and may name a backup backend. After the
//! access check, [`CompiledRoute::plan`] runs the host's steering [`rules`] and decides what
//! the request will try, in order ([`Plan`]).

pub mod config;
pub mod group;
pub mod metrics;
pub mod rules;
pub mod spec;

use group::Group;
use metrics::{RouteMetrics, RoutingMetrics};
use rules::{RequestFacts, Rule};
use spec::{GroupSpec, Host, HostPattern, PathMatch, RouteSpec, RouteTarget};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

/// Whether a backend can take requests now (health checks, ejection).
pub trait Usable {
    /// True when the backend is expected to answer.
    fn usable(&self) -> bool;
}

impl Usable for () {
    fn usable(&self) -> bool {
        true
    }
}

/// What a route (or a rule) sends its requests to.
pub enum Target<B> {
    /// One backend.
    Backend(Arc<B>),
    /// A weighted, sticky group of backends.
    Group(Arc<Group<B>>),
}

impl<B> Clone for Target<B> {
    fn clone(&self) -> Self {
        match self {
            Target::Backend(b) => Target::Backend(b.clone()),
            Target::Group(g) => Target::Group(g.clone()),
        }
    }
}

/// A host's steering: its rules (compiled to live groups) and the optional response header
/// that names who served.
pub struct Steering<B> {
    /// Rules in order; the first match wins.
    pub rules: Vec<Rule<Arc<Group<B>>>>,
    /// `steering_header`: added to responses with the group and backend that served.
    pub header: Option<http::HeaderName>,
    /// Per rule, in the same order: its name as the plan carries it (shared, so a match
    /// allocates nothing) and its `assetgate_rule_matches_total` handle.
    labels: Vec<(Arc<str>, prometheus::IntCounter)>,
}

/// A route ready to serve: the configured route, its target, its metric handles and what the
/// application attached to it (`A`: its cache and rate limit; nothing for lookups).
pub struct CompiledRoute<B, R, A = ()> {
    /// The configured host name used as the metrics label.
    pub host_label: Arc<str>,
    /// The route as configured.
    pub route: R,
    /// Where its requests go unless a rule says otherwise.
    pub target: Target<B>,
    /// The backend answering GET/HEAD when the target fails.
    pub backup: Option<Arc<B>>,
    /// The host's steering rules.
    pub steering: Arc<Steering<B>>,
    /// Request metrics labelled with this host and route.
    pub metrics: RouteMetrics,
    /// What the application attached to the route when it compiled the table
    /// ([`Router::serving`]'s `attach`).
    pub attached: A,
}

/// Makes what the application attaches to a route, from its host label and the route (see
/// [`Router::serving`]).
pub type Attach<'a, R, A> = &'a dyn Fn(&str, &R) -> A;

/// The route chosen for a request (one reference-count increment per request).
pub type RouteMatch<B, R, A = ()> = Arc<CompiledRoute<B, R, A>>;

/// What one request will try, decided once after the access check.
pub struct Plan<B> {
    /// The route's target, or the group of the rule that matched.
    pub target: Target<B>,
    /// The rule that chose the group (`None`: the route's own target).
    pub rule: Option<Arc<str>>,
    /// The request's sticky key within a group.
    pub key: u64,
    /// A new client id to hand out in the group's sticky cookie.
    pub new_cookie: Option<u64>,
    /// The route's backup.
    pub backup: Option<Arc<B>>,
}

impl<B, R, A> CompiledRoute<B, R, A> {
    /// Runs the host's rules: the first match's group, else the route's own target.
    pub fn plan(&self, facts: &RequestFacts<'_>) -> Plan<B> {
        let matched = self.steering.rules.iter().position(|r| r.matches(facts));
        let (target, rule) = match matched {
            Some(i) => {
                let (name, matches) = &self.steering.labels[i];
                matches.inc();
                (
                    Target::Group(self.steering.rules[i].group.clone()),
                    Some(name.clone()),
                )
            }
            None => (self.target.clone(), None),
        };
        let assignment = match &target {
            Target::Group(g) if g.splits() => Some(g.sticky.assign(facts)),
            Target::Group(_) | Target::Backend(_) => None,
        };
        Plan {
            target,
            rule,
            key: assignment.map_or(0, |a| a.key),
            new_cookie: assignment.and_then(|a| a.new_cookie),
            backup: self.backup.clone(),
        }
    }
}

impl<B: Usable> Plan<B> {
    /// The backend to ask next, given the backends this request already gave up on: a usable
    /// one of the target (a group's by rank), then the backup when `allow_backup` (GET/HEAD);
    /// when none of those is usable, the first not yet tried in the same order. `None` when
    /// every candidate was tried.
    pub fn next(&self, tried: &[Arc<B>], allow_backup: bool) -> Option<Arc<B>> {
        let fresh = |b: &Arc<B>| !tried.iter().any(|t| Arc::ptr_eq(t, b));
        let backup = self.backup.as_ref().filter(|b| allow_backup && fresh(b));
        self.primary(|b| fresh(b) && b.usable())
            .or_else(|| backup.filter(|b| b.usable()).cloned())
            .or_else(|| self.primary(fresh))
            .or_else(|| backup.cloned())
    }

    fn primary(&self, accept: impl Fn(&Arc<B>) -> bool) -> Option<Arc<B>> {
        match &self.target {
            Target::Backend(b) => accept(b).then(|| b.clone()),
            Target::Group(g) => g.pick(self.key, accept).map(|m| m.backend.clone()),
        }
    }
}

impl<B> Plan<B> {
    /// Whether `backend` is the route's backup (and not also a target).
    pub fn is_backup(&self, backend: &Arc<B>) -> bool {
        self.backup
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(b, backend))
    }

    /// The group serving the request, if any.
    pub fn group(&self) -> Option<&Arc<Group<B>>> {
        match &self.target {
            Target::Group(g) => Some(g),
            Target::Backend(_) => None,
        }
    }
}

struct CompiledHost<B, R, A> {
    /// The host's label (its first configured name).
    label: Arc<str>,
    routes: Vec<RouteMatch<B, R, A>>,
}

/// Host → ordered routes (of the application's type `R`), built from validated hosts and
/// groups and the live backends (`B`).
pub struct Router<B, R, A = ()> {
    exact: HashMap<String, usize>,
    suffixes: Vec<(String, usize)>,
    any: Option<usize>,
    hosts: Vec<CompiledHost<B, R, A>>,
}

impl<B, R: RouteSpec + Clone> Router<B, R> {
    /// Compiles the routing table for looking routes up (minting, the admin API): nothing
    /// attached, and metrics that go nowhere. Routes, rules and group members whose backend or
    /// group is missing are dropped (validation guarantees there are none).
    pub fn new(
        hosts: &[Host<R>],
        groups: &BTreeMap<String, GroupSpec>,
        backends: &HashMap<String, Arc<B>>,
    ) -> Router<B, R> {
        Router::serving(
            hosts,
            groups,
            backends,
            &|_, _| (),
            &RoutingMetrics::unregistered(),
        )
    }
}

impl<B, R: RouteSpec + Clone, A> Router<B, R, A> {
    /// Compiles `hosts` and `groups` over live backends to serve requests: each route with
    /// what `attach` makes for it, every route and group counting into `metrics`.
    pub fn serving(
        hosts: &[Host<R>],
        groups: &BTreeMap<String, GroupSpec>,
        backends: &HashMap<String, Arc<B>>,
        attach: Attach<'_, R, A>,
        metrics: &RoutingMetrics,
    ) -> Router<B, R, A> {
        let groups: HashMap<String, Arc<Group<B>>> = groups
            .iter()
            .map(|(name, spec)| {
                let members = spec
                    .weights
                    .iter()
                    .filter_map(|(b, w)| backends.get(b).map(|live| (b.clone(), live.clone(), *w)))
                    .collect();
                let group = Group::new(name, spec.sticky.clone(), members, metrics);
                (name.clone(), Arc::new(group))
            })
            .collect();
        let mut router = Router {
            exact: HashMap::new(),
            suffixes: Vec::new(),
            any: None,
            hosts: Vec::new(),
        };
        for (i, host) in hosts.iter().enumerate() {
            router
                .hosts
                .push(compile_host(host, backends, &groups, attach, metrics));
            for p in &host.patterns {
                match p {
                    HostPattern::Exact(n) => {
                        router.exact.entry(n.clone()).or_insert(i);
                    }
                    HostPattern::Suffix(s) => router.suffixes.push((s.clone(), i)),
                    HostPattern::Any => router.any = router.any.or(Some(i)),
                }
            }
        }
        router
            .suffixes
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        router
    }

    /// Finds the route for a host (without port, as [`host::request_host`] returns it; case
    /// and a trailing dot ignored) and a normalised path.
    pub fn find(&self, host: &str, path: &str) -> Option<RouteMatch<B, R, A>> {
        self.host(host)?
            .routes
            .iter()
            .find(|r| matches(r.route.matcher(), path))
            .cloned()
    }

    /// The label of the host that serves `host` (cache keys and purges name hosts by it).
    pub fn host_label(&self, host: &str) -> Option<Arc<str>> {
        self.host(host).map(|h| h.label.clone())
    }

    fn host(&self, host: &str) -> Option<&CompiledHost<B, R, A>> {
        let host = kit::host::canonical(host);
        let host = host.as_ref();
        let index = self.exact.get(host).copied().or_else(|| {
            self.suffixes
                .iter()
                .find(|(suffix, _)| host.ends_with(suffix.as_str()))
                .map(|(_, i)| *i)
                .or(self.any)
        })?;
        self.hosts.get(index)
    }
}

fn compile_host<B, R: RouteSpec + Clone, A>(
    host: &Host<R>,
    backends: &HashMap<String, Arc<B>>,
    groups: &HashMap<String, Arc<Group<B>>>,
    attach: Attach<'_, R, A>,
    metrics: &RoutingMetrics,
) -> CompiledHost<B, R, A> {
    let label: Arc<str> = Arc::from(host.names.first().map(String::as_str).unwrap_or("*"));
    let rules: Vec<Rule<Arc<Group<B>>>> = host
        .rules
        .iter()
        .filter_map(|r| {
            groups.get(&r.group).map(|g| Rule {
                name: r.name.clone(),
                conditions: r.conditions.clone(),
                group: g.clone(),
            })
        })
        .collect();
    let steering = Arc::new(Steering {
        labels: rules
            .iter()
            .map(|r| {
                let matches = metrics.rule(&label, &r.name);
                (Arc::from(r.name.as_str()), matches)
            })
            .collect(),
        rules,
        header: host.steering_header.clone(),
    });
    CompiledHost {
        label: label.clone(),
        routes: host
            .routes
            .iter()
            .filter_map(|r| {
                let target = match r.target() {
                    RouteTarget::Backend(b) => Target::Backend(backends.get(b)?.clone()),
                    RouteTarget::Group(g) => Target::Group(groups.get(g)?.clone()),
                };
                Some(Arc::new(CompiledRoute {
                    host_label: label.clone(),
                    route: r.clone(),
                    target,
                    backup: r.backup().and_then(|b| backends.get(b)).cloned(),
                    steering: steering.clone(),
                    metrics: metrics.route(&label, r.name()),
                    attached: attach(&label, r),
                }))
            })
            .collect(),
    }
}

fn matches(matcher: &PathMatch, path: &str) -> bool {
    match matcher {
        PathMatch::Exact(e) => path == e,
        PathMatch::Prefix(p) => kit::path::has_prefix(path, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// A route as an application might carry it: just what routing reads.
    #[derive(Clone)]
    struct TestRoute {
        name: String,
        matcher: PathMatch,
        target: RouteTarget,
    }

    impl RouteSpec for TestRoute {
        fn name(&self) -> &str {
            &self.name
        }
        fn matcher(&self) -> &PathMatch {
            &self.matcher
        }
        fn target(&self) -> &RouteTarget {
            &self.target
        }
        fn backup(&self) -> Option<&str> {
            None
        }
    }

    fn route(name: &str, matcher: PathMatch) -> TestRoute {
        TestRoute {
            name: name.to_string(),
            matcher,
            target: RouteTarget::Backend("d".to_string()),
        }
    }

    fn host(name: &str, pattern: HostPattern, routes: Vec<TestRoute>) -> Host<TestRoute> {
        Host {
            names: vec![name.to_string()],
            patterns: vec![pattern],
            routes,
            rules: Vec::new(),
            steering_header: None,
        }
    }

    /// `cdn.example.com` (a prefix and an exact route), `*.example.com` and `*`, as the
    /// config's validation compiles them (a prefix without its trailing slash).
    fn hosts() -> Vec<Host<TestRoute>> {
        vec![
            host(
                "cdn.example.com",
                HostPattern::Exact("cdn.example.com".into()),
                vec![
                    route("/static", PathMatch::Prefix("/static".into())),
                    route("/robots.txt", PathMatch::Exact("/robots.txt".into())),
                ],
            ),
            host(
                "*.example.com",
                HostPattern::Suffix(".example.com".into()),
                vec![route("wild", PathMatch::Prefix(String::new()))],
            ),
            host(
                "*",
                HostPattern::Any,
                vec![route("any", PathMatch::Prefix(String::new()))],
            ),
        ]
    }

    #[test]
    fn hosts_and_routes() {
        let backends: HashMap<String, Arc<()>> = [("d".to_string(), Arc::new(()))].into();
        let r = Router::new(&hosts(), &BTreeMap::new(), &backends);
        let m = r.find("CDN.example.com", "/static/a.png").unwrap();
        assert_eq!(&*m.host_label, "cdn.example.com");
        assert_eq!(m.route.name, "/static");
        assert!(r.find("cdn.example.com", "/statics/a.png").is_none());
        assert_eq!(
            r.find("cdn.example.com", "/robots.txt").unwrap().route.name,
            "/robots.txt"
        );
        assert_eq!(r.find("img.example.com", "/x").unwrap().route.name, "wild");
        assert_eq!(r.find("other.org", "/x").unwrap().route.name, "any");
        assert_eq!(
            r.find("cdn.example.com.", "/robots.txt")
                .unwrap()
                .route
                .name,
            "/robots.txt"
        );
    }

    /// A backend whose health a test sets.
    struct Flag(std::sync::atomic::AtomicBool);

    impl Usable for Flag {
        fn usable(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    fn flag(up: bool) -> Arc<Flag> {
        Arc::new(Flag(std::sync::atomic::AtomicBool::new(up)))
    }

    fn plan(target: Target<Flag>, backup: Option<Arc<Flag>>) -> Plan<Flag> {
        Plan {
            target,
            rule: None,
            key: 7,
            new_cookie: None,
            backup,
        }
    }

    #[test]
    fn plans_skip_backends_given_up_on() {
        let b = flag(true);
        let p = plan(Target::Backend(b.clone()), None);
        assert!(p.next(&[], true).is_some_and(|c| Arc::ptr_eq(&c, &b)));
        assert!(p.next(&[b], true).is_none());
        assert!(p.next(&[flag(true)], true).is_some());
    }

    #[test]
    fn the_backup_serves_reads_when_the_target_fails() {
        let primary = flag(true);
        let backup = flag(true);
        let p = plan(Target::Backend(primary.clone()), Some(backup.clone()));
        let is =
            |got: Option<Arc<Flag>>, want: &Arc<Flag>| got.is_some_and(|g| Arc::ptr_eq(&g, want));
        assert!(is(p.next(&[], true), &primary));
        assert!(is(p.next(std::slice::from_ref(&primary), true), &backup));
        assert!(
            p.next(std::slice::from_ref(&primary), false).is_none(),
            "writes never fail over"
        );
        primary.0.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(
            is(p.next(&[], true), &backup),
            "an unhealthy target is skipped"
        );
        assert!(
            is(p.next(&[], false), &primary),
            "a write still asks the target"
        );
        backup.0.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(
            is(p.next(&[], true), &primary),
            "nothing usable: the target first"
        );
        assert!(is(p.next(std::slice::from_ref(&primary), true), &backup));
    }
}
