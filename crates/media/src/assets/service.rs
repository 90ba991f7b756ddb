//! The store's start-up, off the server's synchronous build: connect, migrate, register the
//! configured originals (the quick start's sample images; a file already inside the
//! originals `dir` backend is registered where it lies, anything else is uploaded), then
//! make the store available to the request path. Until then `/readyz` answers 503 and variant requests 503 with
//! `Retry-After`. A store that cannot be reached is retried with backoff.

use super::ingest::{self, Destinations, Ownership, Source};
use super::lookup::AccessCache;
use super::originals::OriginalStores;
use super::placement::Placements;
use super::store::{redacted, AssetStore};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Originals registered at every start (idempotent).
#[derive(Debug, Clone)]
pub struct StartupOriginals {
    /// Files and folders (their files) to add.
    pub paths: Vec<PathBuf>,
    /// Whose they are.
    pub who: Ownership,
}

/// Connects the store in the background.
pub struct StoreService {
    url: String,
    cache: Arc<AccessCache>,
    stores: OriginalStores,
    placements: Placements,
    startup: Option<StartupOriginals>,
}

impl StoreService {
    /// The service that connects `url` into `cache`, registering `startup` originals into
    /// `stores` as `placements` say first.
    pub fn new(
        url: String,
        cache: Arc<AccessCache>,
        stores: OriginalStores,
        placements: Placements,
        startup: Option<StartupOriginals>,
    ) -> StoreService {
        StoreService {
            url,
            cache,
            stores,
            placements,
            startup,
        }
    }

    async fn register(&self, store: &AssetStore, startup: &StartupOriginals) {
        let files = match ingest::files_of(&startup.paths) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, "start-up originals not registered");
                return;
            }
        };
        for file in files {
            let name = file.display().to_string();
            let in_place = self
                .stores
                .get(self.stores.default_name())
                .and_then(|s| s.key_of_local_file(&file));
            let source = match &in_place {
                Some(key) => Source::InPlace(key),
                None => Source::Upload,
            };
            let to = Destinations {
                stores: &self.stores,
                placements: &self.placements,
            };
            let added = match tokio::fs::read(&file).await {
                Ok(bytes) => ingest::add(store, &to, source, bytes, &name, &startup.who).await,
                Err(e) => Err(super::StoreError::Ingest(format!("{name}: {e}"))),
            };
            match added {
                Ok(a) => tracing::info!(file = %name, hash = %a.hash, "original registered"),
                Err(e) => tracing::error!(file = %name, error = %e, "original not registered"),
            }
        }
    }
}

#[async_trait]
impl BackgroundService for StoreService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let file = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot create the state folder");
                }
            }
        }
        let mut wait = Duration::from_millis(250);
        let store = loop {
            let connect = AssetStore::connect(&self.url);
            tokio::select! {
                result = connect => match result {
                    Ok(store) => break store,
                    Err(e) => {
                        tracing::error!(url = %redacted(&self.url), error = %e, retry_in = ?wait, "asset store unavailable");
                    }
                },
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        };
        if let Some(startup) = &self.startup {
            self.register(&store, startup).await;
        }
        tracing::info!(url = %redacted(&self.url), "asset store ready");
        self.cache.connected(store);
        let _ = shutdown.changed().await;
    }
}
