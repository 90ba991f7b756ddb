//! The asset metadata store: which originals exist (blobs, keyed by content hash) and who owns
//! them (assets), in SQL through `sqlx` — SQLite as the embedded default, PostgreSQL for a
//! fleet, chosen by one URL.
//!
//! - [`store::AssetStore`]: the pool, migrations (`migrations/`, embedded at build time and run
//!   at start), registration and lookups.
//! - [`lookup::AccessCache`]: what the request path asks of a hash (may it be served, to whom,
//!   where its bytes are), kept in memory for a short, bounded time.
//! - [`placement`]: where an asset's bytes go — a backend and a key template the server fills
//!   in (`{user}`, `{module}`, `{hash:2}`, …), per visibility and module.
//! - [`originals`]: the backends placements write to and variants read from, by name.
//! - [`ingest`]: hashing files, writing them where their placement says, and recording blob,
//!   object and asset (`assetgate assets add`, and the quick start's sample images at start).
//! - [`presigned`]: presigned uploads straight to the bucket, and their completion.
//! - [`jobs`]: durable jobs in the database (queued, claimed under a lease, retried with
//!   backoff), for what must happen even if the gateway that asked stops.
//! - [`runner::JobRunner`]: the background service that runs those jobs.
//! - [`publish`]: changing an asset's visibility, and moving its bytes to the new placement.
//! - [`remove`]: deleting an asset, and the object and blob nothing references any more.
//! - [`fleet::Fleet`]: what a change must make every gateway do (forget a lookup, purge an
//!   original's cached variants), implemented by the application.
//! - [`retention`]: the rules that delete assets on their own, and the sweep applying them.
//! - [`reconcile`]: the database compared with the backends (missing objects, orphans).
//! - [`service::StoreService`]: connects and migrates in the background (the server's build is
//!   synchronous); `/readyz` answers ready only once the store is up.

pub mod fleet;
pub mod ingest;
pub mod jobs;
pub mod lookup;
pub mod metrics;
pub mod originals;
pub mod placement;
pub mod presigned;
pub mod publish;
pub mod reconcile;
pub mod remove;
pub mod retention;
pub mod runner;
pub mod service;
pub mod store;

use std::fmt;

/// Who may see an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Anyone.
    Public,
    /// Its owner, with a credential naming them.
    Private,
    /// Only holders of an admin token.
    AdminPrivate,
}

impl Visibility {
    /// The name stored in the `visibility` column and written in configs and on the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::AdminPrivate => "admin-private",
        }
    }

    /// The visibility a stored or written name means.
    pub fn parse(text: &str) -> Option<Visibility> {
        match text {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            "admin-private" => Some(Visibility::AdminPrivate),
            _ => None,
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused a statement.
    #[error("asset store: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("asset store migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A lookup failed (the driver's error, as text: shared by every request that waited
    /// for the same query).
    #[error("asset store lookup failed: {0}")]
    Lookup(String),
    /// The store is not connected yet (the start-up service is still connecting).
    #[error("asset store not ready")]
    NotReady,
    /// An original could not be read, hashed or uploaded.
    #[error("{0}")]
    Ingest(String),
}
