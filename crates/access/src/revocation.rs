//! The revocation list: token ids, key ids and user ids refused on every request.
//!
//! Two lists are in force together: the operator's file, and the revocations shared by the
//! fleet (made through the admin API on any gateway and carried by the fleet feed,
//! the cache crate's feed).
//!
//! The file has one entry per line, `token ID`, `key ID` or `user ID`; blank lines and lines
//! starting with `#` are ignored. [`ReloadService`] checks the file's modification time and
//! size every [`CHECK_EVERY`] and swaps in the new list whole; a file that fails to parse or
//! read keeps the last good list in force (and is logged and counted). Requests only read the
//! current list, without a lock.

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often the file is checked for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One parsed revocation list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RevokedSet {
    tokens: HashSet<String>,
    keys: HashSet<String>,
    users: HashSet<String>,
}

impl RevokedSet {
    /// Parses the file format above; `Err` names the first bad line.
    pub fn parse(text: &str) -> Result<RevokedSet, String> {
        let mut set = RevokedSet::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kind, id) = line
                .split_once(char::is_whitespace)
                .map(|(k, id)| (k, id.trim()))
                .ok_or_else(|| format!("line {}: expected `token|key|user ID`", n + 1))?;
            let target = match kind {
                "token" => &mut set.tokens,
                "key" => &mut set.keys,
                "user" => &mut set.users,
                other => {
                    return Err(format!(
                        "line {}: unknown kind \"{other}\"; use token, key or user",
                        n + 1
                    ))
                }
            };
            target.insert(id.to_string());
        }
        Ok(set)
    }

    /// Whether any of the given ids is revoked.
    pub fn refuses(
        &self,
        key_id: Option<&str>,
        token_id: Option<&str>,
        user: Option<&str>,
    ) -> bool {
        key_id.is_some_and(|k| self.keys.contains(k))
            || token_id.is_some_and(|t| self.tokens.contains(t))
            || user.is_some_and(|u| self.users.contains(u))
    }

    /// Adds one `kind ID` entry.
    fn add(&mut self, line: &str) -> Result<(), String> {
        let one = RevokedSet::parse(line)?;
        if one.is_empty() {
            return Err("expected `token|key|user ID`".into());
        }
        self.tokens.extend(one.tokens);
        self.keys.extend(one.keys);
        self.users.extend(one.users);
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tokens.len() + self.keys.len() + self.users.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// The revocation list in force, and the file it comes from (if any).
pub struct Revocations {
    file: Option<PathBuf>,
    current: ArcSwap<RevokedSet>,
    seen: Mutex<Option<Stamp>>,
    /// Revocations shared by the fleet.
    shared: ArcSwap<RevokedSet>,
    /// Serialises changes to `shared` (readers never wait).
    sharing: Mutex<()>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("file", &self.file)
            .field("entries", &self.current.load().len())
            .finish()
    }
}

impl Revocations {
    /// An empty list that never changes.
    pub fn none() -> Revocations {
        Revocations {
            file: None,
            current: ArcSwap::from_pointee(RevokedSet::default()),
            seen: Mutex::new(None),
            shared: ArcSwap::from_pointee(RevokedSet::default()),
            sharing: Mutex::new(()),
        }
    }

    /// Loads the list from `file`; it must exist and parse (checked again when the config is).
    pub fn load(file: &Path) -> Result<Revocations, String> {
        let r = Revocations {
            file: Some(file.to_path_buf()),
            current: ArcSwap::from_pointee(RevokedSet::default()),
            seen: Mutex::new(None),
            shared: ArcSwap::from_pointee(RevokedSet::default()),
            sharing: Mutex::new(()),
        };
        r.reload()?;
        Ok(r)
    }

    /// Whether the list comes from a file (and so may change).
    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// The file's list in force now.
    pub fn current(&self) -> arc_swap::Guard<Arc<RevokedSet>> {
        self.current.load()
    }

    /// Whether the file's list or the fleet's refuses any of the given ids.
    pub fn refuses(
        &self,
        key_id: Option<&str>,
        token_id: Option<&str>,
        user: Option<&str>,
    ) -> bool {
        self.current.load().refuses(key_id, token_id, user)
            || self.shared.load().refuses(key_id, token_id, user)
    }

    /// Adds a fleet revocation (`token ID`, `key ID` or `user ID`) to those in force.
    pub fn revoke_line(&self, line: &str) -> Result<(), String> {
        let _changing = self.sharing.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = RevokedSet::clone(&self.shared.load());
        next.add(line)?;
        self.shared.store(Arc::new(next));
        Ok(())
    }

    /// Adds the fleet's revocations as Redis holds them (lines that do not parse are
    /// skipped and logged); those already in force stay.
    pub fn set_shared(&self, lines: &[String]) {
        let _changing = self.sharing.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = RevokedSet::clone(&self.shared.load());
        for line in lines {
            if let Err(e) = next.add(line) {
                tracing::warn!(error = %e, "shared revocation skipped");
            }
        }
        self.shared.store(Arc::new(next));
    }

    /// Reads the file again if it changed; `Ok(true)` when a new list is in force.
    pub fn reload(&self) -> Result<bool, String> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let read = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
        let now = stamp(file).map_err(read)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == Some(now) {
            return Ok(false);
        }
        let text = std::fs::read_to_string(file).map_err(read)?;
        let set = RevokedSet::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        *seen = Some(now);
        self.current.store(Arc::new(set));
        Ok(true)
    }
}

/// Re-reads the revocation file whenever it changes.
pub struct ReloadService {
    revocations: Arc<Revocations>,
    /// Counts reloads that took (`ok`) and that failed (`error`).
    reloads: (prometheus::IntCounter, prometheus::IntCounter),
}

impl ReloadService {
    /// Follows `revocations`' file, counting reloads in `metrics`.
    pub fn new(revocations: Arc<Revocations>, metrics: &super::metrics::AccessMetrics) -> Self {
        ReloadService {
            revocations,
            reloads: metrics.reloads(),
        }
    }
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (ok, error) = &self.reloads;
        loop {
            match self.revocations.reload() {
                Ok(true) => {
                    let entries = self.revocations.current().len();
                    tracing::info!(entries, "revocation list reloaded");
                    ok.inc();
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "revocation list not reloaded; the last good list stays in force");
                    error.inc();
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_refuses_bad_lines() {
        let set = RevokedSet::parse("# leaked\ntoken t-1\n\nkey  k0\nuser alice\n").unwrap();
        assert!(set.refuses(None, Some("t-1"), None));
        assert!(set.refuses(Some("k0"), None, None));
        assert!(set.refuses(None, None, Some("alice")));
        assert!(!set.refuses(Some("k1"), Some("t-2"), Some("bob")));
        assert!(RevokedSet::parse("tokens t-1").is_err());
        assert!(RevokedSet::parse("token").is_err());
    }

    #[test]
    fn reload_keeps_the_last_good_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("revoked");
        std::fs::write(&file, "token a\n").unwrap();
        let r = Revocations::load(&file).unwrap();
        assert!(r.current().refuses(None, Some("a"), None));
        std::fs::write(&file, "token a\nbogus line here\n").unwrap();
        assert!(r.reload().is_err());
        assert!(r.current().refuses(None, Some("a"), None));
        std::fs::write(&file, "token b\n").unwrap();
        assert_eq!(r.reload(), Ok(true));
        assert!(!r.current().refuses(None, Some("a"), None));
        assert!(r.current().refuses(None, Some("b"), None));
    }
}
