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
//! Module map:
//! - [`config`]: TOML → validated, typed, immutable [`config::Config`]; every error with its key path.
//! - [`kit`] (its own crate, below everything here): the path normaliser, Host parsing, query
//!   parameters and cookies, list-valued header fields, hop-by-hop fields, Range and
//!   conditional requests, the client address, units, secrets, the problems collector, hex,
//!   the clock and ids.
//! - `limits` (its own crate): what one request and one client may ask (head size,
//!   token-bucket rates, connections), and [`connections`] counting each client connection
//!   around the proxy.
//! - `access` (its own crate): each route's access policy (public, HMAC-signed URLs,
//!   CloudFront-compatible signed URLs and cookies, JWT), revocation; [`services`]: minting
//!   credentials and resolving an object's URL with a whole config.
//! - `routing` (its own crate): the host/route table over this crate's routes, steering
//!   rules, weighted sticky groups.
//! - [`proxy`]: the Pingora `ProxyHttp` implementation ([`proxy::Gateway`]), the request context,
//!   response decoration and the answers the gateway makes itself.
//! - [`backend`]: the one interface to S3/R2 (SigV4, health-checked), HTTP origin pools
//!   (round robin or consistent hashing, active and passive health), local directories;
//!   what each is asked for ([`backend::keys`]) and why it failed ([`backend::OriginError`]).
//! - `cache` (its own crate): the shared cache — route policy, RFC 9111 admission, keys, the memory, disk,
//!   Redis and object-store tiers behind one pingora-cache `Storage`, the fleet fill lock,
//!   `Cache-Status`, purge (by URL, prefix, tag) and the fleet feed that carries purges and
//!   revocations.
//! - [`assets`]: the asset metadata store (sqlx over SQLite or PostgreSQL): blobs by content
//!   hash, assets by owner, ingest (`assetgate assets add`), cached lookups.
//! - [`variants`]: image variants — URL grammar, allowlists, the decode/resize/encode
//!   pipeline, the bounded worker pool and the builder behind the in-process origin.
//! - [`error`]: the one table from failures to statuses.
//! - [`metrics`], [`admin`]: Prometheus metrics and the admin listener; [`admin_client`]: the
//!   command line's calls to it (`assetgate purge`, `assetgate revoke`).
//! - [`server`]: assembling the Pingora server; [`local_origin`]: the in-process origin that
//!   serves `dir` files and variants to cached routes; [`logging`]: tracing setup.

pub mod admin;
pub mod admin_client;
pub mod assets;
pub mod audit;

pub mod backend;
pub mod config;
pub mod connections;
pub mod error;
pub mod local_origin;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod services;
pub mod variant_backend;
pub mod variants;
