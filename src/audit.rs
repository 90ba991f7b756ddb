//! The append-only audit log of admin actions: one JSON object per line with time, token id
//! (never the token), action, target, result and client address.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One admin action.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEvent<'a> {
    /// Unix time in seconds.
    pub time: u64,
    /// Id of the admin token used (`-` when none was valid).
    pub token_id: &'a str,
    /// What was done: `redirect`, `sign`, `resolve`, ...
    pub action: &'a str,
    /// What it was done to (an object key or URL).
    pub target: &'a str,
    /// `ok`, or why it failed.
    pub result: &'a str,
    /// The client address.
    pub client: Option<String>,
}

/// The audit log file (opened for append only).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens (creating, never truncating) the audit log.
    pub fn open(path: &Path) -> Result<AuditLog, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open audit log {}: {e}", path.display()))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Whether [`AuditLog::open`] would succeed, found out without creating or changing
    /// anything: an existing log must open for append, a new one's folder must be writable.
    /// (`assetgate check` and config validation use this; only the server opens the log.)
    pub fn check(path: &Path) -> Result<(), String> {
        let fail =
            |e: &dyn std::fmt::Display| format!("cannot open audit log {}: {e}", path.display());
        if path.exists() {
            return std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(drop)
                .map_err(|e| fail(&e));
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(fail(&format!("{} is not a folder", folder.display())));
        }
        rustix::fs::access(folder, rustix::fs::Access::WRITE_OK)
            .map_err(|e| fail(&format!("{} is not writable ({e})", folder.display())))
    }

    /// Records an action now, by `token_id`, from `client`.
    pub fn action(
        &self,
        token_id: &str,
        action: &str,
        target: &str,
        result: &str,
        client: Option<std::net::IpAddr>,
    ) {
        self.record(&AuditEvent {
            time: kit::time::unix_secs(),
            token_id,
            action,
            target,
            result,
            client: client.map(|a| a.to_string()),
        });
    }

    /// Appends one event as a line; a failed write is logged (the action itself stands).
    pub fn record(&self, event: &AuditEvent<'_>) {
        let mut line = serde_json::to_vec(event).unwrap_or_default();
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&line) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
    }
}
