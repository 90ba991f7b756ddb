//! Assembles the Pingora server from a validated config: the proxy service on every listener,
//! background services (origin health checks, endpoint name refreshes, revocation list reloads,
//! cache fill notifications, the fleet feed of purges and revocations, the asset store's
//! start-up), the in-process origin (directory files, image variants) and the admin service.

use crate::admin::{AdminApp, CacheControl};
use crate::audit::AuditLog;
use crate::backend::{self, Backends};
use crate::config::Config;
use crate::proxy::Gateway;
use access::Authenticator;
use cache::object::EntryBucket;
use media::assets::lookup::AccessCache;
use media::assets::service::StoreService;
use media::variants::builder::VariantBuilder;
use media::variants::encode::EncodeSettings;
use pingora::listeners::tls::TlsSettings;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::sync::Arc;

/// Process options from the command line.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunOptions {
    /// Detach and run in the background.
    pub daemon: bool,
    /// Take over the listeners of a running instance (graceful upgrade).
    pub upgrade: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A backend could not be built.
    #[error("{0}")]
    Backend(String),
    /// A cache tier could not be opened.
    #[error("{0}")]
    Cache(String),
    /// Access keys or the revocation list could not be loaded.
    #[error("auth: {0}")]
    Auth(String),
    /// A TLS listener's certificate or key was refused.
    #[error("listeners[{index}].tls: {message}")]
    Tls {
        /// Listener index.
        index: usize,
        /// OpenSSL's complaint.
        message: String,
    },
}

fn server_conf(config: &Config, options: RunOptions) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        grace_period_seconds: Some(s.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_seconds),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        max_retries: s.upstream_attempts,
        daemon: options.daemon,
        ..ServerConf::default()
    }
}

/// Builds the server; call [`Server::run_forever`] on the result.
pub fn build(config: &Config, options: RunOptions) -> Result<Server, StartError> {
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(config, options));
    server.bootstrap();

    let metrics = Arc::new(crate::metrics::Metrics::new());
    let (backends, background) = backend::build(
        &config.backends,
        &metrics.origins,
        &crate::variant_backend::in_process,
    )
    .map_err(StartError::Backend)?;
    let auth =
        Authenticator::from_config(&config.auth, &config.admin_access).map_err(StartError::Auth)?;
    let audit = match &config.admin_access.audit_log {
        Some(path) => Some(Arc::new(AuditLog::open(path).map_err(StartError::Auth)?)),
        None => None,
    };
    let revocation_reload = auth.reload_service(&metrics.access);
    let revocations = auth.revocations.clone();
    let cache = cache::CacheLayer::new(
        &config.cache,
        object_bucket(config, &backends),
        metrics.cache.clone(),
    )
    .map_err(StartError::Cache)?;
    let feed = cache.feed();
    let assets = config.assets.as_ref().map(|a| {
        Arc::new(AccessCache::new(
            a.lookup_ttl,
            a.lookup_entries,
            metrics.assets.clone(),
        ))
    });
    let wake_jobs = Arc::new(tokio::sync::Notify::new());
    let fleet = Arc::new(crate::fleet::FleetControl {
        purger: cache.purger(),
        feed: feed.clone(),
        lookups: assets.clone(),
        metrics: metrics.cache.clone(),
    });
    let builder = add_asset_store(
        &mut server,
        config,
        &backends,
        assets.as_ref(),
        &metrics,
        (&wake_jobs, &fleet),
    )?;
    let shared_config = Arc::new(config.clone());
    let asset_api = match (&config.assets, &assets) {
        (Some(settings), Some(lookups)) => Some(Arc::new(crate::asset_api::AssetApi {
            lookups: lookups.clone(),
            stores: crate::backend::original_stores(settings, &backends)
                .map_err(StartError::Backend)?,
            settings: settings.clone(),
            wake: wake_jobs.clone(),
            fleet: fleet.clone(),
            metrics: metrics.assets.clone(),
            resolving: (shared_config.clone(), backends.clone()),
        })),
        _ => None,
    };
    let gateway = Gateway::new(
        config,
        &backends,
        Arc::new(auth),
        audit.clone(),
        &cache,
        crate::proxy::StoreAccess {
            lookups: assets.clone(),
            uploads: asset_api.clone(),
        },
        metrics.clone(),
    );
    add_proxy(&mut server, config, gateway, &metrics)?;
    add_in_process_origin(&mut server, config, &backends, builder);
    server.add_services(background);
    let forgetful = assets
        .clone()
        .map(|a| Arc::new(ForgetLookups(a)) as Arc<dyn cache::feed::Forgetful>);
    add_cache_services(&mut server, &cache, feed.as_ref(), &revocations, forgetful);
    if let Some(reload) = revocation_reload {
        server.add_service(background_service("revocation list", reload));
    }
    if let Some(admin) = config.admin {
        let control = CacheControl {
            fleet: fleet.clone(),
            revocations,
            hosts: routing::Router::new(&config.hosts, &config.groups, &backends),
        };
        let listeners = config.listeners.iter().map(|l| l.address).collect();
        let app = AdminApp::new(
            shared_config,
            backends,
            listeners,
            audit,
            control,
            asset_api,
            metrics,
        );
        server.add_service(admin_service(admin, app));
    }
    Ok(server)
}

/// The admin listener's service.
fn admin_service(address: std::net::SocketAddr, app: AdminApp) -> Service<AdminApp> {
    let mut service = Service::new("admin".to_string(), app);
    service.add_tcp(&address.to_string());
    service
}

/// The cache's background services: the fill notifications of the fleet lock, and the fleet
/// feed that applies other gateways' purges and revocations here.
fn add_cache_services(
    server: &mut Server,
    cache: &cache::CacheLayer,
    feed: Option<&Arc<cache::feed::Feed>>,
    revocations: &Arc<access::revocation::Revocations>,
    forgetful: Option<Arc<dyn cache::feed::Forgetful>>,
) {
    if let Some(notifications) = cache.notifications() {
        server.add_service(background_service(
            "cache fill notifications",
            notifications,
        ));
    }
    if let Some(feed) = feed {
        let service = cache::feed::FeedService::new(
            feed.clone(),
            cache.purger(),
            revocations.clone(),
            forgetful,
        );
        server.add_service(background_service("fleet feed", service));
    }
}

/// The asset store's remembered lookups, forgotten when another gateway changed an asset.
struct ForgetLookups(Arc<AccessCache>);

impl cache::feed::Forgetful for ForgetLookups {
    fn forget(&self, hash: &str) {
        self.0.forget(hash);
    }
}

/// The bucket the object cache tier keeps its entries in: the S3 client of the `s3` backend
/// `cache.object.backend` names.
fn object_bucket(config: &Config, backends: &Backends) -> Option<Arc<dyn EntryBucket>> {
    let name = &config.cache.object.as_ref()?.backend;
    let bucket = backends.get(name)?.bucket()?;
    Some(Arc::new(CacheBucket(bucket)))
}

/// An `s3` backend's bucket as the object tier's store of entries: the same client and key
/// prefix.
struct CacheBucket(Arc<backend::s3::S3Backend>);

#[async_trait::async_trait]
impl EntryBucket for CacheBucket {
    async fn client(&self) -> aws_sdk_s3::Client {
        self.0.sdk_client().await
    }

    fn name(&self) -> &str {
        self.0.bucket()
    }

    fn key_in_prefix(&self, name: &str) -> String {
        self.0.key_in_prefix(name)
    }
}

/// With `[assets]`: the asset store's start-up (connect, migrate, register originals) and its
/// job runner (woken by `jobs.0`, telling the fleet through `jobs.1`) as background services,
/// and the variant builder reading its originals.
fn add_asset_store(
    server: &mut Server,
    config: &Config,
    backends: &Backends,
    lookups: Option<&Arc<AccessCache>>,
    metrics: &crate::metrics::Metrics,
    jobs: (&Arc<tokio::sync::Notify>, &Arc<crate::fleet::FleetControl>),
) -> Result<Option<Arc<VariantBuilder>>, StartError> {
    let (Some(settings), Some(lookups)) = (&config.assets, lookups) else {
        return Ok(None);
    };
    let originals =
        crate::backend::original_stores(settings, backends).map_err(StartError::Backend)?;
    let builder = Arc::new(VariantBuilder::new(
        lookups.clone(),
        originals.clone(),
        settings.workers,
        settings.queue,
        EncodeSettings {
            avif_speed: settings.avif_speed,
        },
        metrics.variants.clone(),
    ));
    server.add_service(background_service(
        "asset store",
        StoreService::new(
            settings.database.expose().to_string(),
            lookups.clone(),
            originals.clone(),
            settings.placements.clone(),
            settings.register.clone(),
        ),
    ));
    server.add_service(background_service(
        "asset jobs",
        media::assets::runner::JobRunner::new(
            lookups.clone(),
            media::assets::runner::Work {
                stores: originals,
                placements: settings.placements.clone(),
                retention: settings.retention.clone(),
                reconcile: settings.reconcile.clone(),
                fleet: jobs.1.clone(),
            },
            jobs.0.clone(),
            metrics.assets.clone(),
        ),
    ));
    Ok(Some(builder))
}

/// The proxy on every listener, plain or TLS, inside the connection limits.
fn add_proxy(
    server: &mut Server,
    config: &Config,
    gateway: Gateway,
    metrics: &crate::metrics::Metrics,
) -> Result<(), StartError> {
    let limits = &config.limits;
    let mut proxy = Service::new(
        "assetgate".to_string(),
        crate::connections::Limited::new(
            pingora::proxy::http_proxy(&server.configuration, gateway),
            limits.connections_per_client,
            limits.connections,
            limits.header_timeout,
            metrics.limits.clone(),
        ),
    );
    for (index, listener) in config.listeners.iter().enumerate() {
        let addr = listener.address.to_string();
        match &listener.tls {
            None => proxy.add_tcp(&addr),
            Some(tls) => {
                let mut settings = TlsSettings::intermediate(
                    &tls.cert_file.to_string_lossy(),
                    &tls.key_file.to_string_lossy(),
                )
                .map_err(|e| StartError::Tls {
                    index,
                    message: e.to_string(),
                })?;
                if tls.http2 {
                    settings.enable_h2();
                }
                proxy.add_tls_with_settings(&addr, None, settings);
            }
        }
    }
    server.add_service(proxy);
    Ok(())
}

/// The in-process origin on its socket, when a cached route reaches a directory or variants
/// are made.
fn add_in_process_origin(
    server: &mut Server,
    config: &Config,
    backends: &Backends,
    builder: Option<Arc<VariantBuilder>>,
) {
    let cached_dirs = config
        .hosts
        .iter()
        .flat_map(|h| &h.routes)
        .any(|r| r.cache.is_some())
        && backends.values().any(|b| b.local().is_some());
    if !cached_dirs && builder.is_none() {
        return;
    }
    let socket = backend::local::socket_path();
    crate::local_origin::LocalOrigin::clear(&socket);
    let mut origin = Service::new(
        "in-process origin".to_string(),
        crate::local_origin::LocalOrigin::new(backends, builder),
    );
    origin.add_uds(
        &socket.to_string_lossy(),
        Some(std::os::unix::fs::PermissionsExt::from_mode(0o600)),
    );
    server.add_service(origin);
}
