//! assetgate: a self-hosted asset gateway on Pingora.
//!
//! ```text
//! client ─▶ listener ─▶ route (host, path) ─▶ access policy ─▶ steering rules ─▶ cache lookup
//!                                                                                │hit → respond
//!                                                                                ▼miss (one filler)
//!                                     backend: S3/R2 · HTTP pool · variant builder · local dir
//! ```
//!
//! Module map:
//! - [`config`]: TOML → validated, typed, immutable [`config::Config`]; every error with its key path.
//! - [`routing`]: the one path normaliser ([`routing::path`]) and the host/route table.
//! - [`proxy`]: the Pingora `ProxyHttp` implementation ([`proxy::Gateway`]) and response policy.
//! - [`backend`]: S3/R2 (SigV4), HTTP origin pools with health checks, local directories.
//! - [`range`], [`conditional`]: HTTP semantics for responses the gateway builds itself.
//! - [`error`]: the one table from failures to statuses.
//! - [`metrics`], [`admin`]: Prometheus metrics and the admin listener.
//! - [`server`]: assembling the Pingora server; [`logging`]: tracing setup.

pub mod admin;
pub mod backend;
pub mod conditional;
pub mod config;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod range;
pub mod routing;
pub mod server;
