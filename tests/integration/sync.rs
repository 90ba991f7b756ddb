//! `assetgate assets sync`: a folder uploaded through a running gateway, only changes, and
//! resumed after being killed mid-way.

use super::uploads::{dir_store, ready, rows, upload_gateway};
use crate::harness::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `assetgate assets sync DIR` against `gw` as owner `ci`, module `site`, with `args`.
fn sync_command(gw: &Gateway, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_assetgate"));
    c.args(["assets", "sync"])
        .arg(dir)
        .arg("-c")
        .arg(gw.dir.path().join("assetgate.toml"))
        .args(["--owner", "ci", "--module", "site"])
        .args(args);
    c
}

/// [`sync_command`] run to its end: exit status and output.
fn sync(gw: &Gateway, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = sync_command(gw, dir, args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn write_files(dir: &Path, n: usize, tag: &str) {
    for i in 0..n {
        let sub = dir.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("f{i}.txt")),
            format!("{tag} file {i}\n").repeat(20),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn sync_uploads_only_changes_and_deletes_what_is_gone() {
    let (state, root, site) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let gw = upload_gateway(state.path(), &dir_store(root.path()), "");
    ready(&gw).await;
    write_files(site.path(), 30, "v1");
    let (ok, out) = sync(&gw, site.path(), &["--dry-run"]);
    assert!(ok, "{out}");
    assert!(out.contains("30 to upload"), "{out}");
    assert_eq!(rows(state.path()), "0 0 0");
    let (ok, out) = sync(&gw, site.path(), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("30 uploaded"), "{out}");
    assert!(out.contains(", 0 unchanged"), "{out}");
    assert_eq!(rows(state.path()), "30 30 30");
    // Nothing changed: nothing sent. A touched file is hashed, found the same, not sent.
    let touched = site.path().join("d0/f0.txt");
    let bytes = std::fs::read(&touched).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&touched, bytes).unwrap();
    let (ok, out) = sync(&gw, site.path(), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("0 uploaded (0.0 MiB), 30 unchanged"), "{out}");
    // Two changed, one new, one removed: three sent; --delete removes the two old versions
    // and the removed file's asset.
    std::fs::write(site.path().join("d1/f1.txt"), "changed one").unwrap();
    std::fs::write(site.path().join("d2/f2.txt"), "changed two").unwrap();
    std::fs::write(site.path().join("new.txt"), "brand new").unwrap();
    std::fs::remove_file(site.path().join("d3/f3.txt")).unwrap();
    let (ok, out) = sync(&gw, site.path(), &["--delete"]);
    assert!(ok, "{out}");
    assert!(out.contains("3 uploaded"), "{out}");
    assert!(
        out.contains("27 unchanged, 3 asset(s) deleted, 0 failed"),
        "{out}"
    );
    assert_eq!(rows(state.path()), "30 30 30");
}

#[tokio::test]
async fn an_interrupted_sync_goes_on_where_it_stopped() {
    let (state, root, site) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let gw = upload_gateway(state.path(), &dir_store(root.path()), "");
    ready(&gw).await;
    write_files(site.path(), 400, "r");
    let mut child = sync_command(&gw, site.path(), &["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = site.path().join(".assetgate-sync");
    let lines = || {
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for _ in 0..200 {
        if lines() >= 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = lines();
    assert!((20..400).contains(&done), "killed after {done} files");
    let (ok, out) = sync(&gw, site.path(), &[]);
    assert!(ok, "{out}");
    // At most the one in flight when it was killed is sent again.
    let uploaded: usize = out
        .split(" uploaded")
        .next()
        .unwrap()
        .rsplit('\n')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        uploaded <= 400 - done + 1 && uploaded + done >= 400,
        "{done} before, then: {out}"
    );
    assert_eq!(rows(state.path()), "400 400 400");
}
