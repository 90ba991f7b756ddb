//! The `assetgate` command line: `run`, `check`.

use anyhow::Context;
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

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => match load_or_report(&config) {
            Some(_) => {
                println!("{}: ok", config.display());
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

fn run(cfg: config::Config, options: RunOptions) -> anyhow::Result<()> {
    assetgate::logging::init(&cfg.log);
    let listeners: Vec<String> = cfg
        .listeners
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    tracing::info!(?listeners, admin = ?cfg.admin, "assetgate starting");
    let server = server::build(&cfg, options).context("cannot start")?;
    server.run_forever()
}
