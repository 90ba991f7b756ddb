//! assetgate: a self-hosted asset gateway on Pingora.
//!
//! ```text
//! client ─▶ listener ─▶ host check ─▶ path normaliser ─▶ route (host, path) ─▶ access policy
//!     ─▶ steering rules (first match → its group, else the route's target)
//!     ─▶ group (weighted, sticky)
//!     ─▶ cache (cached routes): memory → disk → Redis → object store, one fill per miss in a
//!        gateway and across gateways sharing Redis; the steering choice is part of the key
//!     ─▶ backend: S3/R2 (SigV4, proxied) · HTTP pool (proxied, health-checked, members
//!        ejected on failures) · local dir (served here, or through the in-process origin on
//!        a cached route) · variant builder (image variants of originals in the asset store,
//!        through the in-process origin; on a variants route the asset store decides access
//!        before the cache is asked)
//!     ─▶ on refusal, timeout or 5xx of a GET/HEAD: the group's next backend, then the backup
//!
//! beside it: purges and revocations reach every gateway sharing the Redis (the fleet feed);
//! the asset store connects and migrates in the background (`/readyz` waits for it)
//! ```
//!
//! The proxy ([`proxy::Gateway`]) calls one interface for every backend kind
//! ([`backend::Backend`]) and asks the request's [`routing::Plan`] which backend to try next, so
//! new steps arrive as modules on this path rather than as new branches in each phase.
//!
//! The domains are crates of their own below this one (docs/architecture.md draws them):
//! `kit` (the parsers every layer shares), `access` (access policies and schemes,
//! revocation), `limits` (request and client limits), `routing` (the host/route table over
//! this crate's routes, steering), `cache` (the shared cache and its four tiers), `origins`
//! (the backend kinds behind one trait) and `media` (the asset store and image variants).
//!
//! This crate is the application:
//! - [`config`]: TOML → validated, typed, immutable [`config::Config`]; every error with its
//!   key path; the key reference made from the raw structs.
//! - [`proxy`]: the Pingora `ProxyHttp` implementation ([`proxy::Gateway`]): the request path
//!   as ordered stages, the request context, response decoration and the answers the gateway
//!   makes itself; [`connections`] counting each client connection around it.
//! - [`backend`]: the origins' kinds over this crate's routes; [`variant_backend`]: the
//!   `variants` kind; [`local_origin`]: the in-process origin that serves `dir` files and
//!   variants to cached routes.
//! - [`services`]: minting credentials and resolving an object's URL with a whole config.
//! - [`error`]: the one table from failures to statuses; [`fleet`]: purging and forgetting
//!   on every gateway (the admin API and the job runner share it).
//! - [`metrics`], [`admin`]: Prometheus metrics and the admin listener; [`admin_client`]: the
//!   command line's calls to it (`assetgate purge`, `assetgate revoke`); [`audit`]: the
//!   audit log of admin actions.
//! - [`sync`]: `assetgate assets sync`, a folder uploaded through the admin API, changes only.
//! - [`server`]: assembling the Pingora server; [`logging`]: tracing setup.

pub mod admin;
pub mod admin_client;
pub mod asset_api;
pub mod asset_cli;
pub mod audit;
pub mod backend;
pub mod config;
pub mod connections;
pub mod error;
pub mod fleet;
pub mod local_origin;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod services;
pub mod sync;
pub mod variant_backend;
