//! The `assetgate` command line: `run`, `check`, `sign`, `purge`, `revoke`, `assets`.

use anyhow::Context;
use assetgate::backend::metrics::OriginMetrics;
use assetgate::config;
use assetgate::server::{self, RunOptions};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc: glibc malloc's arena locks showed up as futex waits under load (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A self-hosted asset gateway on Pingora: S3/R2 buckets, HTTP origins and local directories.
#[derive(Parser)]
#[command(name = "assetgate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway in the foreground (or as a daemon with --daemon).
    Run {
        /// Config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Detach and run in the background (writes server.pid_file).
        #[arg(short, long)]
        daemon: bool,
        /// Take over the listeners of a running instance via server.upgrade_sock.
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate a config file and print every problem; exit 0 when valid.
    Check {
        /// Config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Mint a signed URL with the keys of a config file (prints the URL).
    Sign {
        #[command(subcommand)]
        what: Box<Sign>,
    },
    /// Purge cached entries on a running gateway and every gateway sharing its Redis (through
    /// its admin API; prints what was removed).
    Purge {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(flatten)]
        what: PurgeWhat,
    },
    /// Revoke a token, key or user id on a running gateway and every gateway sharing its
    /// Redis (through its admin API).
    Revoke {
        #[command(flatten)]
        admin: AdminArgs,
        /// What the id names.
        #[arg(long, value_parser = ["token", "key", "user"])]
        kind: String,
        /// The id to refuse from now on.
        #[arg(long)]
        id: String,
    },
    /// Make one variant of a local file as the gateway would, e.g. `640x480/80.webp` (no
    /// allowlists apply); prints the time per variant and the output size.
    Variant {
        /// The original.
        file: PathBuf,
        /// `{w}x{h}[-fit]/{q}.{ext}`, e.g. `1024x768/85.jpeg` or `640x480-inside/80.webp`.
        spec: String,
        /// Where to write the variant.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Make it this many times (on each thread) and report the mean.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Threads making variants at once (throughput under load).
        #[arg(long, default_value_t = 1)]
        parallel: u32,
        /// rav1e speed for AVIF, 1–10.
        #[arg(long, default_value_t = 8)]
        avif_speed: u8,
    },
    /// Manage the asset metadata store of a config's `[assets]`.
    Assets {
        #[command(subcommand)]
        what: AssetsCommand,
    },
}

#[derive(Subcommand)]
enum AssetsCommand {
    /// Hash, upload (to `[assets] originals`, under a key derived from the hash) and register
    /// originals, idempotently; prints `HASH  FILE` per file.
    Add {
        /// Config file (TOML) with `[assets]`.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Files (or folders, whose files are added).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Owner of the assets (a credential's user).
        #[arg(long, default_value = "admin")]
        owner: String,
        /// Product part the assets belong to.
        #[arg(long, default_value = "default")]
        module: String,
        /// Who may see them.
        #[arg(long, default_value = "private", value_parser = ["public", "private", "admin-private"])]
        visibility: String,
    },
    /// Apply `[assets.retention]` now on a running gateway (`POST /v1/assets/gc`): prints
    /// each expired asset and what was deleted.
    Gc {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Print the gateway's JSON answer instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Upload a folder (a build's output) through a running gateway: only new or changed
    /// files, several at once, resumable, remembered in DIR/.assetgate-sync.
    Sync {
        /// The folder.
        dir: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
        /// Owner of the assets.
        #[arg(long)]
        owner: String,
        /// Module of the assets.
        #[arg(long)]
        module: String,
        /// Who may see them.
        #[arg(long, default_value = "public", value_parser = ["public", "private", "admin-private"])]
        visibility: String,
        /// Uploads at once.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        /// Delete the assets of content gone from the folder.
        #[arg(long)]
        delete: bool,
        /// Only say what would be uploaded and deleted.
        #[arg(long)]
        dry_run: bool,
        /// State file (default DIR/.assetgate-sync).
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// List assets on a running gateway (`GET /v1/assets`), a page at a time.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only this owner's.
        #[arg(long)]
        owner: Option<String>,
        /// Only this module's.
        #[arg(long)]
        module: Option<String>,
        /// Only of this visibility.
        #[arg(long, value_parser = ["public", "private", "admin-private"])]
        visibility: Option<String>,
        /// Start after this asset id (the `next` a previous page printed).
        #[arg(long)]
        after: Option<String>,
        /// Assets per page (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print the gateway's JSON answer instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Compare the asset database with the backends now on a running gateway
    /// (`POST /v1/assets/reconcile`): prints every mismatch and the drift.
    Reconcile {
        #[command(flatten)]
        admin: AdminArgs,
        /// Print the gateway's JSON answer instead of lines.
        #[arg(long)]
        json: bool,
    },
}

/// Where the admin API is and how to authenticate to it.
#[derive(clap::Args)]
struct AdminArgs {
    /// Config file (TOML) of the gateway: its `admin` address and first admin token.
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Admin listener address instead of the config's `admin` (e.g. 127.0.0.1:9090).
    #[arg(long, value_name = "ADDR")]
    admin: Option<std::net::SocketAddr>,
    /// Admin token instead of the config's first one.
    #[arg(long, env = "ASSETGATE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// What to purge: exactly one.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct PurgeWhat {
    /// Every cached variant of this URL (any query), e.g. https://img.example.com/a.jpg.
    #[arg(long)]
    url: Option<String>,
    /// Every URL starting with this, e.g. https://img.example.com/photos/ (not just a host).
    #[arg(long)]
    prefix: Option<String>,
    /// Every entry the origin tagged with this (Surrogate-Key / Cache-Tag).
    #[arg(long)]
    tag: Option<String>,
    /// Everything, in every tier.
    #[arg(long)]
    everything: bool,
}

#[derive(Subcommand)]
enum Sign {
    /// An assetgate HMAC URL (query parameters `ag_*`; see the README for the format).
    Hmac {
        /// Config file (TOML) holding `[auth.hmac]` keys and the route that serves the URL.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The absolute URL clients will fetch, e.g. https://cdn.example.com/private/u1/a.jpg.
        url: String,
        /// Lifetime, e.g. 15m, 1h (default 15m; at most the route's max_token_lifetime).
        #[arg(long, default_value = "15m")]
        ttl: String,
        /// Key id (default: the first key in [[auth.hmac.keys]]).
        #[arg(long)]
        key: Option<String>,
        /// Grant every path under this prefix instead of the URL's path alone.
        #[arg(long)]
        prefix: Option<String>,
        /// User id (required on routes with an owner_prefix: the path's owner).
        #[arg(long)]
        user: Option<String>,
        /// Token id, so the token can be revoked on its own.
        #[arg(long)]
        token_id: Option<String>,
        /// Client address or CIDR the URL is bound to.
        #[arg(long)]
        ip: Option<String>,
        /// Allowed methods, comma-separated (e.g. GET,HEAD).
        #[arg(long)]
        methods: Option<String>,
        /// Not valid before this Unix time (seconds).
        #[arg(long)]
        not_before: Option<u64>,
    },
    /// An S3 presigned GET URL for an object of an s3 backend (credentials as the gateway's).
    S3 {
        /// Config file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The s3 backend's name in [backends].
        #[arg(long)]
        backend: String,
        /// Object key, relative to the backend's key_prefix.
        key: String,
        /// Lifetime, e.g. 5m (default 5m; at most 7d).
        #[arg(long, default_value = "5m")]
        ttl: String,
    },
    /// A CloudFront-compatible signed URL (or, with --cookies, signed cookies).
    Cloudfront {
        /// Config file (TOML) holding `[[auth.cloudfront.keys]]` with a private_key.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The absolute URL clients will fetch, exactly as they will send it.
        url: String,
        /// Lifetime, e.g. 15m (default 15m; at most the route's max_token_lifetime).
        #[arg(long, default_value = "15m")]
        ttl: String,
        /// Key-Pair-Id (default: the first key with a private_key).
        #[arg(long)]
        key: Option<String>,
        /// Custom policy Resource, e.g. 'https://cdn.example.com/private/*' (wildcards * and ?).
        #[arg(long)]
        resource: Option<String>,
        /// Custom policy DateGreaterThan (Unix seconds).
        #[arg(long)]
        not_before: Option<u64>,
        /// Custom policy IpAddress (CIDR).
        #[arg(long)]
        ip: Option<String>,
        /// Sign over SHA-256 (Hash-Algorithm=SHA256) instead of SHA-1.
        #[arg(long)]
        sha256: bool,
        /// Print `Set-Cookie` header values for signed cookies instead of a URL.
        #[arg(long)]
        cookies: bool,
    },
}

fn load_or_report(path: &Path) -> Option<config::Config> {
    match config::load(path) {
        Ok(c) => Some(c),
        Err(problems) => {
            eprintln!("{}: {} problem(s)", path.display(), problems.0.len());
            for p in &problems.0 {
                eprintln!("  {p}");
            }
            None
        }
    }
}

/// The admin listener and token `admin` names (the config's unless given); `None` after
/// saying what is missing.
fn admin_target(admin: AdminArgs, action: &str) -> Option<(std::net::SocketAddr, String)> {
    let cfg = load_or_report(&admin.config)?;
    let Some(addr) = admin.admin.or(cfg.admin) else {
        eprintln!("assetgate {action}: the config has no `admin` address; give --admin");
        return None;
    };
    let token = admin.token.or_else(|| {
        cfg.admin_access
            .tokens
            .first()
            .map(|(_, s)| s.expose().to_string())
    });
    let Some(token) = token else {
        eprintln!("assetgate {action}: no admin token in the config; give --token");
        return None;
    };
    Some((addr, token))
}

/// Calls `POST /v1/{action}` as `admin` says; prints the answer; exit 0 on 200.
fn admin_call(admin: AdminArgs, action: &str, body: serde_json::Value) -> ExitCode {
    let path = format!("/v1/{action}");
    admin_call_shown(admin, ("POST", &path, Some(body)), &|answer| {
        answer.to_string()
    })
}

/// One admin API call (`method`, `path`, JSON body), printing a 200 answer's JSON as `show`
/// writes it; exit 0 on 200.
fn admin_call_shown(
    admin: AdminArgs,
    (method, path, body): (&str, &str, Option<serde_json::Value>),
    show: &dyn Fn(&serde_json::Value) -> String,
) -> ExitCode {
    let action = path.trim_start_matches("/v1/");
    let Some((addr, token)) = admin_target(admin, action) else {
        return ExitCode::from(2);
    };
    match assetgate::admin_client::request(addr, &token, method, path, body.as_ref()) {
        Ok(answer) => {
            if answer.status == 200 {
                match serde_json::from_str(&answer.body) {
                    Ok(value) => println!("{}", show(&value)),
                    Err(_) => println!("{}", answer.body),
                }
                ExitCode::SUCCESS
            } else {
                println!("{}", answer.body);
                eprintln!("assetgate {action}: the gateway answered {}", answer.status);
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("assetgate {action}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One arm per subcommand, so the whole command line reads in one place.
fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Purge { admin, what } => {
            let body = match what {
                PurgeWhat { url: Some(url), .. } => serde_json::json!({ "url": url }),
                PurgeWhat {
                    prefix: Some(prefix),
                    ..
                } => serde_json::json!({ "prefix": prefix }),
                PurgeWhat { tag: Some(tag), .. } => serde_json::json!({ "tag": tag }),
                PurgeWhat { .. } => serde_json::json!({ "everything": true }),
            };
            admin_call(admin, "purge", body)
        }
        Command::Revoke { admin, kind, id } => admin_call(
            admin,
            "revoke",
            serde_json::json!({ "kind": kind, "id": id }),
        ),
        Command::Variant {
            file,
            spec,
            output,
            repeat,
            parallel,
            avif_speed,
        } => match variant(
            &file,
            &spec,
            output.as_deref(),
            repeat,
            parallel,
            avif_speed,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("assetgate variant: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Assets {
            what:
                AssetsCommand::Gc {
                    admin,
                    dry_run,
                    json,
                },
        } => {
            let body = serde_json::json!({ "dry_run": dry_run });
            let show = |v: &serde_json::Value| match json {
                true => v.to_string(),
                false => assetgate::asset_cli::gc_report(v),
            };
            admin_call_shown(admin, ("POST", "/v1/assets/gc", Some(body)), &show)
        }
        Command::Assets {
            what:
                AssetsCommand::Sync {
                    dir,
                    admin,
                    owner,
                    module,
                    visibility,
                    jobs,
                    delete,
                    dry_run,
                    state,
                },
        } => {
            let Some((addr, token)) = admin_target(admin, "assets sync") else {
                return ExitCode::from(2);
            };
            let options = assetgate::sync::Options {
                admin: addr,
                token,
                owner,
                module,
                visibility,
                jobs,
                delete,
                dry_run,
                state: state.unwrap_or_else(|| dir.join(assetgate::sync::STATE_FILE)),
            };
            let started = std::time::Instant::now();
            match assetgate::sync::sync(&dir, &options) {
                Ok(s) => {
                    let verb = if dry_run { "to upload" } else { "uploaded" };
                    println!(
                        "{} {verb} ({:.1} MiB), {} unchanged, {} asset(s) {}deleted, {} failed in {:.1} s",
                        s.uploaded,
                        s.bytes as f64 / 1048576.0,
                        s.unchanged,
                        s.deleted,
                        if dry_run { "to be " } else { "" },
                        s.failed,
                        started.elapsed().as_secs_f64()
                    );
                    if s.failed == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("assetgate assets sync: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Assets {
            what: AssetsCommand::Reconcile { admin, json },
        } => {
            let show = |v: &serde_json::Value| match json {
                true => v.to_string(),
                false => assetgate::asset_cli::reconcile_report(v),
            };
            let body = serde_json::json!({});
            admin_call_shown(admin, ("POST", "/v1/assets/reconcile", Some(body)), &show)
        }
        Command::Assets {
            what:
                AssetsCommand::List {
                    admin,
                    owner,
                    module,
                    visibility,
                    after,
                    limit,
                    json,
                },
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (name, value) in [
                ("owner", owner),
                ("module", module),
                ("visibility", visibility),
                ("after", after),
            ] {
                if let Some(v) = value {
                    query.push(format!("{name}={}", assetgate::asset_cli::query_value(&v)));
                }
            }
            let path = format!("/v1/assets?{}", query.join("&"));
            let show = |v: &serde_json::Value| match json {
                true => v.to_string(),
                false => assetgate::asset_cli::asset_list(v),
            };
            admin_call_shown(admin, ("GET", &path, None), &show)
        }
        Command::Assets { what } => match assets(what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("assetgate assets: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Sign { what } => match sign(*what) {
            Ok(url) => {
                println!("{url}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("assetgate sign: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Check { config } => match load_or_report(&config) {
            Some(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("  warning: {w}");
                }
                match cfg.warnings.len() {
                    0 => println!("{}: ok", config.display()),
                    n => println!("{}: ok, {n} warning(s)", config.display()),
                }
                ExitCode::SUCCESS
            }
            None => ExitCode::from(2),
        },
        Command::Run {
            config,
            daemon,
            upgrade,
        } => {
            let Some(cfg) = load_or_report(&config) else {
                return ExitCode::from(2);
            };
            match run(cfg, RunOptions { daemon, upgrade }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("assetgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The config `sign` reads its keys from, and the lifetime asked for.
fn config_and_ttl(path: &Path, ttl: &str) -> anyhow::Result<(config::Config, std::time::Duration)> {
    let cfg = load_or_report(path)
        .with_context(|| format!("{} is not a valid config", path.display()))?;
    let ttl = kit::units::parse_duration(ttl).map_err(anyhow::Error::msg)?;
    Ok((cfg, ttl))
}

/// `assetgate sign`: one arm per scheme, each reading its options and minting with the
/// config's keys.
fn sign(what: Sign) -> anyhow::Result<String> {
    use assetgate::services::mint;
    match what {
        Sign::Hmac {
            config,
            url,
            ttl,
            key,
            prefix,
            user,
            token_id,
            ip,
            methods,
            not_before,
        } => {
            let (cfg, ttl) = config_and_ttl(&config, &ttl)?;
            let opts = mint::HmacOptions {
                key_id: key,
                ttl,
                not_before,
                ip,
                user,
                token_id,
                methods,
                prefix,
            };
            Ok(mint::hmac_url(&cfg, &url, &opts, kit::time::unix_secs())?)
        }
        Sign::S3 {
            config,
            backend,
            key,
            ttl,
        } => {
            let (cfg, ttl) = config_and_ttl(&config, &ttl)?;
            let (backends, _) = assetgate::backend::build(
                &cfg.backends,
                &OriginMetrics::unregistered(),
                &assetgate::variant_backend::in_process,
            )
            .map_err(anyhow::Error::msg)?;
            let b = backends
                .get(&backend)
                .with_context(|| format!("no backend \"{backend}\" in the config"))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(runtime.block_on(b.presign_get(&key, true, ttl))?)
        }
        Sign::Cloudfront {
            config,
            url,
            ttl,
            key,
            resource,
            not_before,
            ip,
            sha256,
            cookies,
        } => {
            let (cfg, ttl) = config_and_ttl(&config, &ttl)?;
            let opts = mint::CloudFrontOptions {
                key_id: key,
                ttl,
                resource,
                not_before,
                ip,
                sha256,
            };
            if cookies {
                let lines: Vec<String> =
                    mint::cloudfront_cookies(&cfg, &url, &opts, kit::time::unix_secs())?
                        .into_iter()
                        .map(|(name, value)| format!("{name}={value}; Path=/; Secure; HttpOnly"))
                        .collect();
                Ok(lines.join("\n"))
            } else {
                Ok(mint::cloudfront_url(
                    &cfg,
                    &url,
                    &opts,
                    kit::time::unix_secs(),
                )?)
            }
        }
    }
}

fn variant(
    file: &Path,
    spec: &str,
    output: Option<&Path>,
    repeat: u32,
    parallel: u32,
    avif_speed: u8,
) -> anyhow::Result<()> {
    use media::variants::{encode::EncodeSettings, pipeline, spec::parse_canonical};
    let bytes = std::sync::Arc::new(
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?,
    );
    let hash = media::assets::ingest::content_hash(&bytes);
    let spec = parse_canonical(&format!("/{hash}/{}", spec.trim_start_matches('/')))?;
    let limits = media::variants::VariantLimits::default();
    let settings = EncodeSettings { avif_speed };
    let started = std::time::Instant::now();
    let threads: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let (bytes, spec, limits) = (bytes.clone(), spec.clone(), limits.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for _ in 0..repeat.max(1) {
                    out = pipeline::make(&bytes, &spec, &limits, settings)?;
                }
                Ok::<_, media::variants::VariantError>(out)
            })
        })
        .collect();
    let mut made = Vec::new();
    for t in threads {
        made = t
            .join()
            .map_err(|_| anyhow::anyhow!("the pipeline panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = f64::from(repeat.max(1) * parallel.max(1));
    println!(
        "ms_per_variant={:.2} variants_per_s={:.2} bytes={}",
        elapsed * 1000.0 * f64::from(parallel.max(1)) / count,
        count / elapsed,
        made.len()
    );
    if let Some(out) = output {
        std::fs::write(out, &made).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

fn assets(what: AssetsCommand) -> anyhow::Result<()> {
    use media::assets::ingest::{self, Ownership};
    use media::assets::store::AssetStore;
    use media::assets::Visibility;
    let AssetsCommand::Add {
        config,
        files,
        owner,
        module,
        visibility,
    } = what
    else {
        anyhow::bail!("not a local assets command");
    };
    let cfg = load_or_report(&config)
        .with_context(|| format!("{} is not a valid config", config.display()))?;
    let settings = cfg
        .assets
        .as_ref()
        .with_context(|| format!("{} has no [assets] section", config.display()))?;
    let who = Ownership {
        owner,
        module,
        visibility: Visibility::parse(&visibility).context("unknown visibility")?,
    };
    let (backends, _) = assetgate::backend::build(
        &cfg.backends,
        &OriginMetrics::unregistered(),
        &assetgate::variant_backend::in_process,
    )
    .map_err(anyhow::Error::msg)?;
    let stores =
        assetgate::backend::original_stores(settings, &backends).map_err(anyhow::Error::msg)?;
    let to = ingest::Destinations {
        stores: &stores,
        placements: &settings.placements,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = AssetStore::connect(settings.database.expose()).await?;
        let mut failed = 0;
        for file in ingest::files_of(&files)? {
            let name = file.display().to_string();
            // Streamed like an upload through the API, without its limits: the operator's
            // own files, of any size and type.
            let any = ingest::UploadLimits {
                max_size: u64::MAX,
                types: Vec::new(),
                presign_ttl: std::time::Duration::ZERO,
            };
            let added = match ingest::FileBody::open(&file).await {
                Ok(mut body) => ingest::upload(&store, &to, &mut body, &name, &who, &any).await,
                Err(e) => Err(ingest::UploadError::Body(format!("{name}: {e}"))),
            };
            match added {
                Ok(a) => println!("{}  {name}", a.hash),
                Err(e) => {
                    eprintln!("{name}: {e}");
                    failed += 1;
                }
            }
        }
        store.close().await;
        anyhow::ensure!(failed == 0, "{failed} file(s) not added");
        Ok(())
    })
}

fn run(cfg: config::Config, options: RunOptions) -> anyhow::Result<()> {
    assetgate::logging::init(&cfg.log);
    let listeners: Vec<String> = cfg
        .listeners
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    tracing::info!(?listeners, admin = ?cfg.admin, "assetgate starting");
    for w in &cfg.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    let server = server::build(&cfg, options).context("cannot start")?;
    server.run_forever()
}
