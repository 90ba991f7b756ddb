//! The routing table as the config describes it, validated: hosts, their routes' matchers and
//! targets, groups. The application's route type carries more (its cache, access and limit
//! policies); routing reads it through [`RouteSpec`].

use super::group::Sticky;
use super::rules::Rule;
use http::HeaderName;

/// A group: backends with their shares, and how a client stays on one.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Backend name and weight (0 drains it; at least one is positive).
    pub weights: Vec<(String, u32)>,
    /// How assignment sticks.
    pub sticky: Sticky,
}

/// How a host name in the config matches the request's Host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostPattern {
    /// This exact name.
    Exact(String),
    /// Any name ending in this suffix (stored with its leading dot: `.example.com`).
    Suffix(String),
    /// Any host at all.
    Any,
}

/// A virtual host, with routes of the application's type `R`.
#[derive(Debug, Clone)]
pub struct Host<R> {
    /// Names as written, e.g. `*.example.com`; the first is the metrics label.
    pub names: Vec<String>,
    /// Compiled patterns, one per name.
    pub patterns: Vec<HostPattern>,
    /// Ordered routes.
    pub routes: Vec<R>,
    /// Steering rules, in order (each names a group of the config).
    pub rules: Vec<Rule<String>>,
    /// Response header naming who served, when configured.
    pub steering_header: Option<HeaderName>,
}

/// What a route points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// A backend of the config, by name.
    Backend(String),
    /// A group of the config, by name.
    Group(String),
}

/// How a route matches the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Segment-aware prefix.
    Prefix(String),
    /// Exact path.
    Exact(String),
}

/// What routing reads of a route: its name, how it matches, where it goes.
pub trait RouteSpec {
    /// Label for metrics and logs.
    fn name(&self) -> &str;
    /// How the route matches the normalised path.
    fn matcher(&self) -> &PathMatch;
    /// The backend or group serving the route.
    fn target(&self) -> &RouteTarget;
    /// Backend answering GET/HEAD when the target fails.
    fn backup(&self) -> Option<&str>;
}
