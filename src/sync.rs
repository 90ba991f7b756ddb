//! `assetgate assets sync DIR`: a build output folder uploaded to the asset store through a
//! running gateway's admin API (`PUT /v1/assets`), only what changed.
//!
//! - What was sent is remembered in a state file (default `DIR/.assetgate-sync`): a line per
//!   file — path, size, modification time, hash, asset id. A file whose size and time match
//!   its line is unchanged without being read; one whose bytes hash to its line's hash is
//!   unchanged too (touched, not changed). Everything else is uploaded.
//! - Uploads run on `jobs` connections at once (kept alive), each file streamed from disk.
//! - Each finished upload is appended to the state file at once, so an interrupted sync goes
//!   on where it stopped; the file is rewritten compactly at the end.
//! - `--delete` deletes the assets of content no file of the folder holds any more;
//!   `--dry-run` only says what would be done.
//! - On a terminal, a progress line (files, bytes, rate, ETA); otherwise a line per file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The state file's name inside the folder (never synced itself).
pub const STATE_FILE: &str = ".assetgate-sync";

/// What was last sent for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Length in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: u128,
    /// SHA-256 of the bytes.
    pub hash: String,
    /// The asset it became.
    pub asset: String,
}

/// The state file: every synced file by its path relative to the folder.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State(pub BTreeMap<String, Sent>);

impl State {
    /// Reads `path` (missing: empty). Later lines win; `PATH\t-` forgets a path.
    pub fn load(path: &Path) -> std::io::Result<State> {
        let mut state = State::default();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(state),
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                [rel, "-"] => {
                    state.0.remove(*rel);
                }
                [rel, size, mtime, hash, asset] => {
                    if let (Ok(size), Ok(mtime_ns)) = (size.parse(), mtime.parse()) {
                        let sent = Sent {
                            size,
                            mtime_ns,
                            hash: hash.to_string(),
                            asset: asset.to_string(),
                        };
                        state.0.insert(rel.to_string(), sent);
                    }
                }
                _ => {} // a line cut short by an interruption
            }
        }
        Ok(state)
    }

    /// Rewrites `path` with one line per file (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let temp = path.with_extension("tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&temp)?);
        for (rel, s) in &self.0 {
            writeln!(out, "{}", line(rel, s))?;
        }
        out.flush()?;
        drop(out);
        std::fs::rename(temp, path)
    }
}

fn line(rel: &str, s: &Sent) -> String {
    format!("{rel}\t{}\t{}\t{}\t{}", s.size, s.mtime_ns, s.hash, s.asset)
}

/// A file of the folder.
#[derive(Debug, Clone)]
struct Local {
    rel: String,
    path: PathBuf,
    size: u64,
    mtime_ns: u128,
}

/// Every regular file under `dir` (symbolic links not followed; the state file and its
/// temporary skipped), by relative path with `/` separators.
fn walk(dir: &Path) -> std::io::Result<Vec<Local>> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = todo.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push((entry.path(), rel));
            } else if kind.is_file() && !(prefix.is_empty() && name.starts_with(STATE_FILE)) {
                let meta = entry.metadata()?;
                let mtime_ns = meta
                    .modified()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                out.push(Local {
                    rel,
                    path: entry.path(),
                    size: meta.len(),
                    mtime_ns,
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// SHA-256 of the file at `path`, read in pieces.
fn hash_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(kit::hex::encode(&hasher.finalize()))
}

/// How to sync.
#[derive(Debug, Clone)]
pub struct Options {
    /// The admin listener.
    pub admin: SocketAddr,
    /// An admin token.
    pub token: String,
    /// Owner, module and visibility of the assets.
    pub owner: String,
    /// The module.
    pub module: String,
    /// The visibility (`public`, `private`, `admin-private`).
    pub visibility: String,
    /// Uploads at once.
    pub jobs: usize,
    /// Delete the assets of content gone from the folder.
    pub delete: bool,
    /// Only say what would be done.
    pub dry_run: bool,
    /// The state file.
    pub state: PathBuf,
}

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Files uploaded (or, dry, to upload).
    pub uploaded: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Files left as they were.
    pub unchanged: usize,
    /// Assets deleted (or, dry, to delete).
    pub deleted: usize,
    /// Files or assets that failed.
    pub failed: usize,
}

/// The plan: files to upload, the state with the unchanged ones, and assets to delete.
struct Plan {
    uploads: Vec<Local>,
    kept: State,
    unchanged: usize,
    deletions: Vec<String>,
}

fn plan(dir: &Path, state: &State, delete: bool) -> std::io::Result<Plan> {
    let files = walk(dir)?;
    let mut kept = State::default();
    let mut uploads = Vec::new();
    let mut unchanged = 0;
    for f in files {
        match state.0.get(&f.rel) {
            Some(s) if s.size == f.size && s.mtime_ns == f.mtime_ns => {
                kept.0.insert(f.rel.clone(), s.clone());
                unchanged += 1;
            }
            Some(s) if s.size == f.size && hash_file(&f.path)? == s.hash => {
                // Touched, not changed: remembered with its new time, nothing sent.
                let sent = Sent {
                    mtime_ns: f.mtime_ns,
                    ..s.clone()
                };
                kept.0.insert(f.rel.clone(), sent);
                unchanged += 1;
            }
            _ => uploads.push(f),
        }
    }
    // Assets of content no remaining file holds (a file deleted or changed): deleted.
    let mut deletions = Vec::new();
    if delete {
        let still: BTreeSet<&str> = kept.0.values().map(|s| s.asset.as_str()).collect();
        let mut gone: BTreeSet<String> = BTreeSet::new();
        for (rel, s) in &state.0 {
            if !kept.0.contains_key(rel) && !still.contains(s.asset.as_str()) {
                gone.insert(s.asset.clone());
            }
        }
        deletions = gone.into_iter().collect();
    }
    Ok(Plan {
        uploads,
        kept,
        unchanged,
        deletions,
    })
}

/// One kept-alive connection to the admin listener.
struct Connection {
    addr: SocketAddr,
    /// Read through a buffer (answer heads are read line by line); written through
    /// `get_mut`.
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    fn new(addr: SocketAddr) -> Connection {
        Connection { addr, stream: None }
    }

    /// Sends `head` then `body` (its length is in `head`); the status and the answer's
    /// body. After a failure the connection is dropped (the next request opens a new one);
    /// the file is sent again by the next sync.
    fn request(
        &mut self,
        head: &str,
        body: &mut dyn FnMut(&mut TcpStream) -> std::io::Result<()>,
    ) -> std::io::Result<(u16, String)> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(600)))?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        let stream = self.stream.as_mut().expect("opened above");
        let sent = stream
            .get_mut()
            .write_all(head.as_bytes())
            .and_then(|()| body(stream.get_mut()))
            .and_then(|()| read_answer(stream));
        match sent {
            Ok((status, text, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok((status, text))
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// Reads one `Content-Length` framed answer: status, body, and whether the connection stays
/// open.
fn read_answer(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String, bool)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read_until(b'\n', &mut head)? == 0 {
            return Err(bad("the gateway closed the connection"));
        }
        if head.len() > 64 * 1024 {
            return Err(bad("answer head too long"));
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an HTTP answer"))?;
    let mut length = 0usize;
    let mut keep = true;
    for l in head.lines().skip(1) {
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| bad("bad Content-Length"))?;
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                keep = false;
            }
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).to_string(), keep))
}

/// `PUT /v1/assets` of the file `f`: its hash and asset id.
fn upload(conn: &mut Connection, o: &Options, f: &Local) -> Result<(String, String), String> {
    let enc = crate::asset_cli::query_value;
    let head = format!(
        "PUT /v1/assets?owner={}&module={}&visibility={}&name={} HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        enc(&o.owner),
        enc(&o.module),
        enc(&o.visibility),
        enc(&f.rel),
        o.admin,
        o.token,
        f.size
    );
    let mut file = std::fs::File::open(&f.path).map_err(|e| format!("{}: {e}", f.rel))?;
    let mut copy = |s: &mut TcpStream| -> std::io::Result<()> {
        let copied = std::io::copy(&mut (&mut file).take(f.size), s)?;
        if copied != f.size {
            return Err(std::io::Error::other("the file shrank while it was sent"));
        }
        Ok(())
    };
    let (status, text) = conn
        .request(&head, &mut copy)
        .map_err(|e| format!("{}: {e}", f.rel))?;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status != 200 {
        let why = answer["error"].as_str().unwrap_or(&text).to_string();
        return Err(format!("{}: the gateway answered {status}: {why}", f.rel));
    }
    match (answer["hash"].as_str(), answer["id"].as_str()) {
        (Some(h), Some(id)) => Ok((h.to_string(), id.to_string())),
        _ => Err(format!("{}: the gateway's answer names no asset", f.rel)),
    }
}

/// `DELETE /v1/assets/{id}` (one already gone is no failure).
fn delete(conn: &mut Connection, o: &Options, id: &str) -> Result<(), String> {
    let head = format!(
        "DELETE /v1/assets/{} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        crate::asset_cli::query_value(id),
        o.admin,
        o.token
    );
    let (status, text) = conn
        .request(&head, &mut |_| Ok(()))
        .map_err(|e| format!("asset {id}: {e}"))?;
    match status {
        200 | 404 => Ok(()),
        s => Err(format!("asset {id}: the gateway answered {s}: {text}")),
    }
}

/// What the progress shows.
struct Progress {
    files: usize,
    bytes: u64,
    done_files: AtomicUsize,
    done_bytes: AtomicU64,
    started: Instant,
    terminal: bool,
    out: Mutex<()>,
}

impl Progress {
    fn file_done(&self, rel: &str, size: u64, outcome: &Result<(String, String), String>) {
        let files = self.done_files.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.done_bytes.fetch_add(size, Ordering::Relaxed) + size;
        let _guard = self.out.lock();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = bytes as f64 / elapsed;
        if self.terminal {
            let eta = match rate > 0.0 {
                true => (self.bytes.saturating_sub(bytes)) as f64 / rate,
                false => 0.0,
            };
            if let Err(e) = outcome {
                eprint!("\r\x1b[2K{e}\n");
            }
            eprint!(
                "\r\x1b[2K{files}/{} files  {}/{} MiB  {:.1} MiB/s  ETA {:.0} s",
                self.files,
                bytes >> 20,
                self.bytes >> 20,
                rate / 1048576.0,
                eta
            );
        } else {
            match outcome {
                Ok((hash, _)) => println!("uploaded {rel} ({size} bytes) {hash}"),
                Err(e) => println!("failed {e}"),
            }
        }
    }
}

/// Syncs `dir` as `o` says; the summary.
pub fn sync(dir: &Path, o: &Options) -> Result<Summary, String> {
    let state = State::load(&o.state).map_err(|e| format!("{}: {e}", o.state.display()))?;
    let plan = plan(dir, &state, o.delete).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut summary = Summary {
        unchanged: plan.unchanged,
        uploaded: plan.uploads.len(),
        bytes: plan.uploads.iter().map(|f| f.size).sum(),
        deleted: plan.deletions.len(),
        failed: 0,
    };
    if o.dry_run {
        for f in &plan.uploads {
            println!("would upload {} ({} bytes)", f.rel, f.size);
        }
        for id in &plan.deletions {
            println!("would delete asset {id}");
        }
        return Ok(summary);
    }
    // Append-only while running, so an interruption keeps what finished.
    let journal = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&o.state)
            .map_err(|e| format!("{}: {e}", o.state.display()))?,
    );
    let progress = Progress {
        files: plan.uploads.len(),
        bytes: summary.bytes,
        done_files: AtomicUsize::new(0),
        done_bytes: AtomicU64::new(0),
        started: Instant::now(),
        terminal: std::io::stderr().is_terminal(),
        out: Mutex::new(()),
    };
    let queue = Mutex::new(plan.uploads.iter());
    let results = Mutex::new(plan.kept.clone());
    let failed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..o.jobs.max(1) {
            scope.spawn(|| {
                let mut conn = Connection::new(o.admin);
                loop {
                    let Some(f) = queue.lock().ok().and_then(|mut q| q.next()) else {
                        return;
                    };
                    let outcome = upload(&mut conn, o, f);
                    progress.file_done(&f.rel, f.size, &outcome);
                    match outcome {
                        Ok((hash, asset)) => {
                            let sent = Sent {
                                size: f.size,
                                mtime_ns: f.mtime_ns,
                                hash,
                                asset,
                            };
                            if let Ok(mut j) = journal.lock() {
                                let _ = writeln!(j, "{}", line(&f.rel, &sent));
                            }
                            if let Ok(mut r) = results.lock() {
                                r.0.insert(f.rel.clone(), sent);
                            }
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    if progress.terminal && !plan.uploads.is_empty() {
        eprintln!();
    }
    let mut done = results.into_inner().unwrap_or_default();
    let mut conn = Connection::new(o.admin);
    for id in &plan.deletions {
        if let Err(e) = delete(&mut conn, o, id) {
            println!("failed {e}");
            failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Paths whose files are gone are forgotten; everything is written compactly.
    done.0.retain(|rel, _| dir.join(rel).is_file());
    done.save(&o.state)
        .map_err(|e| format!("{}: {e}", o.state.display()))?;
    summary.failed = failed.into_inner();
    summary.uploaded -= summary.failed.min(summary.uploaded);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_survives_a_cut_line_and_later_lines_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        std::fs::write(
            &path,
            "a.png\t3\t10\th1\tid1\nb.png\t4\t11\th2\tid2\na.png\t5\t12\th3\tid3\nb.png\t-\nc.png\t9\t",
        )
        .unwrap();
        let state = State::load(&path).unwrap();
        assert_eq!(state.0.len(), 1);
        assert_eq!(state.0["a.png"].hash, "h3");
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state);
    }

    #[test]
    fn unchanged_and_touched_files_are_not_sent_and_gone_content_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("same.txt"), "same").unwrap();
        std::fs::write(dir.path().join("touched.txt"), "touched").unwrap();
        std::fs::write(dir.path().join("changed.txt"), "new bytes").unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "").unwrap();
        let files = walk(dir.path()).unwrap();
        assert_eq!(files.len(), 3, "the state file is never synced");
        let meta = |rel: &str| files.iter().find(|f| f.rel == rel).unwrap().clone();
        let mut state = State::default();
        let sent = |f: &Local, hash: String, asset: &str| Sent {
            size: f.size,
            mtime_ns: f.mtime_ns,
            hash,
            asset: asset.into(),
        };
        let same = meta("same.txt");
        state
            .0
            .insert("same.txt".into(), sent(&same, "x".into(), "a1"));
        let touched = meta("touched.txt");
        let mut t = sent(&touched, hash_file(&touched.path).unwrap(), "a2");
        t.mtime_ns -= 1;
        state.0.insert("touched.txt".into(), t);
        let changed = meta("changed.txt");
        let mut c = sent(&changed, "old".into(), "a3");
        c.mtime_ns -= 1;
        state.0.insert("changed.txt".into(), c);
        state
            .0
            .insert("gone.txt".into(), sent(&changed, "g".into(), "a4"));
        let p = plan(dir.path(), &state, true).unwrap();
        assert_eq!(p.unchanged, 2);
        assert_eq!(
            p.uploads.iter().map(|f| f.rel.as_str()).collect::<Vec<_>>(),
            ["changed.txt"]
        );
        assert_eq!(p.deletions, ["a3", "a4"]);
        assert_eq!(p.kept.0["touched.txt"].mtime_ns, touched.mtime_ns);
    }
}
