//! Reconciliation against a real bucket (Garage): seeded drift of each kind — a row whose
//! object was deleted behind the store's back, an object overwritten with other bytes, an
//! object no row names — found, acted on, reported and shown in the metrics.

use super::uploads::{hex_sha256, png, put, ready, upload_gateway, TOKEN};
use crate::harness::*;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn reconciliation_finds_missing_orphan_and_resized_objects_in_garage() {
    let garage = garage().await;
    let state = tempfile::tempdir().unwrap();
    let prefix = format!("reconcile-{}", std::process::id());
    let extra = format!(
        "[assets.reconcile]\nremove_orphans_after = \"2s\"\n\n{store}\n\
         [backends.variants]\nkind = \"variants\"\n\n[[hosts]]\nnames = [\"img.test\"]\n\
         [[hosts.routes]]\npath = \"/o\"\nstrip_prefix = \"/o\"\nbackend = \"variants\"\n\
         [hosts.routes.variants]\noriginals = true\n",
        store = garage.backend_toml("store", &prefix, GARAGE_SECRET),
    );
    // The originals backend is given in `extra` (with the variants route), not by the helper.
    let gw = upload_gateway(state.path(), "", &extra);
    ready(&gw).await;
    let bodies: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let mut b = png();
            b.extend_from_slice(&[i; 16]);
            b
        })
        .collect();
    let hashes: Vec<String> = bodies.iter().map(|b| hex_sha256(b)).collect();
    for b in &bodies {
        let (status, answer) = put(&gw, "owner=ops&module=site&visibility=public", b.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let key = |h: &str| format!("{}/{}/{h}", &h[..2], &h[2..4]);
    let s3 = garage.client();
    // Drift: the first object deleted, the second overwritten shorter, a stray object.
    s3.delete_object()
        .bucket(GARAGE_BUCKET)
        .key(format!("{prefix}/{}", key(&hashes[0])))
        .send()
        .await
        .unwrap();
    garage
        .put(
            &format!("{prefix}/{}", key(&hashes[1])),
            b"short".to_vec(),
            "image/png",
        )
        .await;
    garage
        .put(
            &format!("{prefix}/stray/file.bin"),
            b"nobody's".to_vec(),
            "application/octet-stream",
        )
        .await;
    let reconcile = || {
        Command::new(env!("CARGO_BIN_EXE_assetgate"))
            .args(["assets", "reconcile", "-c"])
            .arg(gw.dir.path().join("assetgate.toml"))
            .output()
            .unwrap()
    };
    let out = reconcile();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect = [
        format!("missing  store:{}  blob {}  → marked missing", key(&hashes[0]), hashes[0]),
        format!(
            "size     store:{}  blob {}  (row says {} bytes, stored 5)  → reported",
            key(&hashes[1]),
            hashes[1],
            bodies[1].len()
        ),
        "orphan   store:stray/file.bin  → kept".to_string(),
        "checked 3 row(s) and 3 object(s): 1 missing, 1 orphan(s), 1 size mismatch(es), 0 restored; drift 75.0000%"
            .to_string(),
    ];
    for line in &expect {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    // The missing original is no longer served as if present; the others are.
    let original = |h: &str| {
        client()
            .get(gw.url(&format!("/o/{h}/original")))
            .header("host", "img.test")
            .send()
    };
    assert_eq!(original(&hashes[0]).await.unwrap().status(), 404);
    assert_eq!(original(&hashes[2]).await.unwrap().status(), 200);
    // Every gateway's metrics show the last report (refreshed every 5 s).
    let mut shown = String::new();
    for _ in 0..80 {
        shown = gw.metrics().await;
        if shown.contains("assetgate_asset_drift_ratio 0.75") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in [
        "assetgate_asset_drift_ratio 0.75",
        "assetgate_asset_reconcile_mismatches{kind=\"missing\"} 1",
        "assetgate_asset_reconcile_mismatches{kind=\"orphan\"} 1",
        "assetgate_asset_reconcile_checked{what=\"rows\"} 3",
    ] {
        assert!(shown.contains(line), "no {line} in the metrics:\n{shown}");
    }
    // The same bytes uploaded again write the object again: served once more.
    let (status, answer) = put(
        &gw,
        "owner=ops&module=site&visibility=public",
        bodies[0].clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let r = original(&hashes[0]).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bodies[0].as_slice());
    // Once older than remove_orphans_after, the orphan is removed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = client()
        .post(gw.admin_url("/v1/assets/reconcile"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        (report["missing"].as_u64(), report["orphans"].as_u64()),
        (Some(0), Some(1)),
        "{report}"
    );
    let orphan = report["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "orphan")
        .unwrap();
    assert_eq!(orphan["action"], "removed", "{report}");
    let left = s3
        .list_objects_v2()
        .bucket(GARAGE_BUCKET)
        .prefix(format!("{prefix}/stray/"))
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0));
    // Both runs are recorded as reconcile jobs.
    let r = client()
        .get(gw.admin_url("/v1/jobs?state=done"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let jobs: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let runs = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "reconcile")
        .count();
    assert_eq!(runs, 2, "{jobs}");
}
