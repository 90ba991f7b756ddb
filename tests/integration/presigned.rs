//! Presigned uploads against a real bucket (Garage checks the SigV4 POST policy): a form sent
//! as a browser sends it, completed and recorded; tampered, oversized, mistyped and expired
//! forms refused by Garage itself; a completion that finds other bytes than the form claimed
//! refused with nothing left.

use super::uploads::{admin_get, admin_post, hex_sha256, png, ready, upload_gateway};
use crate::harness::*;
use std::process::Command;
use std::time::Duration;

/// Posts the form `presigned` (the gateway's answer) with the file `bytes` and the fields
/// `set` overridden, as a browser would: Garage's status and body.
fn post_form(presigned: &serde_json::Value, bytes: &[u8], set: serde_json::Value) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload");
    std::fs::write(&file, bytes).unwrap();
    let args = serde_json::json!({
        "url": presigned["url"], "fields": presigned["fields"], "file": file, "set": set,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/signers/post_form.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(args.to_string())
        .output()
        .expect("python3 (package python3, with botocore from PyPI)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap(), body.to_string())
}

/// Garage refused the form (S3 answers 403 for a policy that does not allow it; Garage 400
/// or 403 depending on the condition).
fn refused(status: u16) -> bool {
    status == 400 || status == 403
}

#[tokio::test]
async fn presigned_uploads_are_checked_by_garage_and_completed_by_the_gateway() {
    let garage = garage().await;
    let state = tempfile::tempdir().unwrap();
    let prefix = format!("presign-{}", std::process::id());
    let extra =
        "[assets.upload]\nmax_size = \"1MiB\"\ntypes = [\"image/*\"]\npresign_ttl = \"3s\"\n\
                 [assets.retention]\nevery = \"30d\"\nunfinished_uploads = \"2s\"\n";
    let gw = upload_gateway(
        state.path(),
        &garage.backend_toml("store", &prefix, GARAGE_SECRET),
        extra,
    );
    ready(&gw).await;
    let ask = serde_json::json!({"owner": "zoe", "module": "shots", "name": "a.png"});
    let (status, form) = admin_post(&gw, "/v1/assets/presign", ask.clone()).await;
    assert_eq!(status, 200, "{form}");
    let id = form["upload"].as_str().unwrap().to_string();
    // The server chose the key, with the owner and module in it.
    assert_eq!(
        form["fields"]["key"],
        format!("{prefix}/.incoming/zoe/shots/{id}")
    );
    // Completing before anything was sent: 409.
    let complete = format!("/v1/assets/presign/{id}/complete");
    assert_eq!(
        admin_post(&gw, &complete, serde_json::json!({})).await.0,
        409
    );
    let bytes = png();
    let png_type = serde_json::json!({"Content-Type": "image/png"});
    // Tampered with: another key, another type, too large — Garage refuses each.
    let elsewhere = serde_json::json!({"Content-Type": "image/png", "key": format!("{prefix}/zoe/elsewhere.png")});
    let (status, body) = post_form(&form, &bytes, elsewhere);
    assert!(refused(status), "{status} {body}");
    assert!(body.contains("not allowed in policy"), "{body}");
    let html = serde_json::json!({"Content-Type": "text/html"});
    let (status, body) = post_form(&form, &bytes, html);
    assert!(refused(status), "{status} {body}");
    assert!(
        body.contains("content-type&apos; has value not allowed in policy"),
        "{body}"
    );
    let big = vec![0x89u8; (1 << 20) + 1];
    let (status, body) = post_form(&form, &big, png_type.clone());
    assert!(refused(status), "{status} {body}");
    assert!(body.contains("File size does not match policy"), "{body}");
    assert!(garage.keys(&format!("{prefix}/")).await.is_empty());
    // As signed: accepted, then completed.
    let (status, body) = post_form(&form, &bytes, png_type.clone());
    assert!(status == 204 || status == 200, "{status} {body}");
    let (status, done) = admin_post(&gw, &complete, serde_json::json!({})).await;
    assert_eq!(status, 200, "{done}");
    let hash = hex_sha256(&bytes);
    assert_eq!(
        (done["hash"].as_str(), done["type"].as_str()),
        (Some(hash.as_str()), Some("image/png"))
    );
    assert_eq!(
        garage.keys(&format!("{prefix}/")).await,
        vec![format!("{prefix}/{}/{}/{hash}", &hash[..2], &hash[2..4])]
    );
    let (status, asset) =
        admin_get(&gw, &format!("/v1/assets/{}", done["id"].as_str().unwrap())).await;
    assert_eq!((status, asset["owner"].as_str()), (200, Some("zoe")));
    // Completed once: the upload is gone.
    assert_eq!(
        admin_post(&gw, &complete, serde_json::json!({})).await.0,
        404
    );
    // A form whose bytes are not what it claimed: refused at completion, nothing left.
    let (_, form) = admin_post(&gw, "/v1/assets/presign", ask.clone()).await;
    let id = form["upload"].as_str().unwrap().to_string();
    let (status, _) = post_form(&form, b"<html>not a picture</html>", png_type.clone());
    assert!(status == 204 || status == 200);
    let (status, answer) = admin_post(
        &gw,
        &format!("/v1/assets/presign/{id}/complete"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    assert!(garage
        .keys(&format!("{prefix}/.incoming/"))
        .await
        .is_empty());
    // Expired: Garage refuses the form once its policy lapsed.
    let (_, form) = admin_post(&gw, "/v1/assets/presign", ask).await;
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let (status, body) = post_form(&form, &bytes, png_type.clone());
    assert!(refused(status), "{status} {body}");
    assert!(body.contains("Expiration date is in the past"), "{body}");
    // Uploads never completed (the expired form's, and one sent but not completed) are
    // removed by retention, with what was sent.
    let (_, form) = admin_post(
        &gw,
        "/v1/assets/presign",
        serde_json::json!({"owner": "zoe", "module": "shots"}),
    )
    .await;
    assert!(
        post_form(
            &form,
            &bytes,
            serde_json::json!({"Content-Type": "image/png"})
        )
        .0 < 300
    );
    assert_eq!(garage.keys(&format!("{prefix}/.incoming/")).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, gc) = admin_post(&gw, "/v1/assets/gc", serde_json::json!({})).await;
    assert_eq!(
        (status, gc["unfinished_removed"].as_u64()),
        (200, Some(2)),
        "{gc}"
    );
    assert!(garage
        .keys(&format!("{prefix}/.incoming/"))
        .await
        .is_empty());
    // Not the owner the server would accept, and a type the uploads do not take.
    let bad = serde_json::json!({"owner": "../x", "module": "shots"});
    assert_eq!(admin_post(&gw, "/v1/assets/presign", bad).await.0, 400);
    let pdf = serde_json::json!({"owner": "zoe", "module": "shots", "type": "application/pdf"});
    assert_eq!(admin_post(&gw, "/v1/assets/presign", pdf).await.0, 415);
}

#[tokio::test]
async fn a_directory_backend_cannot_presign() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = upload_gateway(state.path(), &super::uploads::dir_store(root.path()), "");
    ready(&gw).await;
    let (status, answer) = admin_post(
        &gw,
        "/v1/assets/presign",
        serde_json::json!({"owner": "a", "module": "b"}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("presigned uploads need an s3 backend"),
        "{answer}"
    );
}
