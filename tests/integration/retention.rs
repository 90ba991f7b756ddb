//! Durable jobs across restarts, retention once per fleet, and `assetgate assets gc`: real
//! gateways on a shared SQLite file or PostgreSQL database.

use super::uploads::{
    admin_get, dir_store, files, finished, put, ready, upload_gateway, upload_gateway_on,
};
use crate::harness::*;
use media::assets::store::AssetStore;
use media::assets::Visibility;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_job_queued_while_no_gateway_runs_is_run_by_the_next_one_to_start() {
    let (state, root, public_root) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let extra = format!(
        "[[assets.placements]]\nvisibility = \"public\"\nbackend = \"pub\"\nkey = \"public/{{user}}/{{name}}\"\n\n\
         [backends.pub]\nkind = \"dir\"\nroot = \"{}\"\n",
        public_root.path().display()
    );
    let gw = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    ready(&gw).await;
    let (status, up) = put(
        &gw,
        "owner=alice&module=shots&name=a.bin",
        b"queued bytes".to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    drop(gw);
    // No gateway runs: the asset is published in the store itself, which queues the move.
    let url = format!("sqlite://{}", state.path().join("assets.db").display());
    let store = AssetStore::connect(&url).await.unwrap();
    let done = media::assets::publish::set_visibility(
        &store,
        up["id"].as_str().unwrap(),
        Visibility::Public,
    )
    .await
    .unwrap()
    .expect("the asset");
    assert_eq!(store.job(&done.job).await.unwrap().unwrap().state, "queued");
    store.close().await;
    assert!(files(public_root.path()).is_empty());
    // The next gateway to start runs it.
    let gw = upload_gateway(state.path(), &dir_store(root.path()), &extra);
    ready(&gw).await;
    let job = finished(&gw, &serde_json::json!(done.job)).await;
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(
        files(public_root.path()),
        vec!["public/alice/a.bin".to_string()]
    );
    assert!(files(root.path()).is_empty(), "{:?}", files(root.path()));
}

/// The ids of the assets a retention job's result says it deleted.
fn deleted_by(job: &serde_json::Value) -> Vec<String> {
    let result: serde_json::Value = job["result"].clone();
    result["expired"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|a| a["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn retention_runs_once_per_period_across_two_gateways() {
    let pg = postgres();
    let database = pg.database(&format!("retention_{}", std::process::id()));
    let root = tempfile::tempdir().unwrap();
    let (state1, state2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let extra = "[assets.retention]\nevery = \"1s\"\n\
                 [[assets.retention.rules]]\nmodule = \"drafts\"\ndelete_after = \"2s\"\n";
    let started = Instant::now();
    let gw1 = upload_gateway_on(&database, state1.path(), &dir_store(root.path()), extra);
    let gw2 = upload_gateway_on(&database, state2.path(), &dir_store(root.path()), extra);
    ready(&gw1).await;
    ready(&gw2).await;
    let (_, draft) = put(
        &gw1,
        "owner=bob&module=drafts&name=d.bin",
        b"a draft".to_vec(),
    )
    .await;
    let (_, post) = put(
        &gw2,
        "owner=bob&module=posts&name=p.bin",
        b"a post".to_vec(),
    )
    .await;
    let draft_id = draft["id"].as_str().expect("uploaded").to_string();
    let mut gone = false;
    for _ in 0..100 {
        if admin_get(&gw1, &format!("/v1/assets/{draft_id}")).await.0 == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the draft was never deleted");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, jobs) = admin_get(&gw2, "/v1/jobs").await;
    let elapsed = started.elapsed().as_secs();
    let retention: Vec<&serde_json::Value> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "retention")
        .collect();
    // One job per one-second period, though both gateways queue each period's.
    assert!(
        !retention.is_empty() && retention.len() as u64 <= elapsed + 2,
        "{} retention jobs in {elapsed} s: {jobs}",
        retention.len()
    );
    let deletions: usize = retention
        .iter()
        .map(|j| deleted_by(j).iter().filter(|id| **id == draft_id).count())
        .sum();
    assert_eq!(deletions, 1, "{jobs}");
    // The post is no draft: kept.
    let (status, _) = admin_get(
        &gw1,
        &format!("/v1/assets/{}", post["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    // Each period's job ran once: never claimed a second time by the other gateway.
    for job in retention.iter().filter(|j| j["state"] == "done") {
        assert_eq!(job["attempts"], 1, "{job}");
    }
}

#[tokio::test]
async fn assets_gc_reports_expired_assets_and_deletes_them_unless_dry() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let extra = "[assets.retention]\nevery = \"30d\"\n\
                 [[assets.retention.rules]]\nmodule = \"drafts\"\nvisibility = \"private\"\ndelete_after = \"1s\"\n";
    let gw = upload_gateway(state.path(), &dir_store(root.path()), extra);
    ready(&gw).await;
    let (_, draft) = put(
        &gw,
        "owner=carol&module=drafts&name=d.bin",
        b"draft bytes".to_vec(),
    )
    .await;
    let id = draft["id"].as_str().expect("uploaded").to_string();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let gc = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .args(["assets", "gc", "-c"])
            .arg(gw.dir.path().join("assetgate.toml"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = gc(&["--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("would delete {id}  carol/drafts (private)")),
        "{text}"
    );
    assert!(
        text.ends_with("1 asset(s) expired; dry run: nothing deleted\n"),
        "{text}"
    );
    assert_eq!(admin_get(&gw, &format!("/v1/assets/{id}")).await.0, 200);
    assert_eq!(files(root.path()).len(), 1);
    let out = gc(&["--json"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (answer["deleted"].as_u64(), answer["dry_run"].as_bool()),
        (Some(1), Some(false)),
        "{answer}"
    );
    assert_eq!(admin_get(&gw, &format!("/v1/assets/{id}")).await.0, 404);
    assert!(files(root.path()).is_empty(), "{:?}", files(root.path()));
    // Audited like every call.
    let audit = std::fs::read_to_string(state.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"gc\"").count(), 2, "{audit}");
}
