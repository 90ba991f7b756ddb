//! Upload routes on the proxy: a `PUT` or `POST` whose credential names the user — an HMAC
//! URL minted for that method, or a JWT from an independent signer (PyJWT) — becomes that
//! user's asset in the route's module; the client chooses neither owner nor module.

use super::uploads::{files, hex_sha256, png, ready, rows, upload_gateway};
use crate::harness::*;
use std::process::Command;

const HS_SECRET: &str = "jwt-upload-secret-0123456789abcdef0123456789";

/// A JWT for `sub` from PyJWT, HS256 with the test key.
fn jwt(sub: &str) -> String {
    let now = now() as i64;
    let args = serde_json::json!({
        "alg": "HS256", "secret": HS_SECRET, "kid": "hs1",
        "claims": {"sub": sub, "iss": "https://id.test", "aud": "assetgate", "iat": now, "exp": now + 300},
    });
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/signers/pyjwt_sign.py"
        ))
        .arg(args.to_string())
        .output()
        .expect("python3 (with PyJWT from PyPI)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn an_upload_route_stores_the_body_as_the_credentials_users_asset() {
    let (state, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let extra = format!(
        "[assets.upload]\ntypes = [\"image/*\"]\n\n\
         [[auth.hmac.keys]]\nid = \"k1\"\nsecret = {{ file = \"{hmac}\" }}\n\n\
         [auth.jwt]\nissuer = \"https://id.test\"\naudience = [\"assetgate\"]\n\
         [[auth.jwt.keys]]\nid = \"hs1\"\nalgorithm = \"HS256\"\nsecret = {{ file = \"{hs}\" }}\n\n\
         [[hosts]]\nnames = [\"up.test\"]\n\
         [[hosts.routes]]\npath = \"/avatars\"\nbackend = \"store\"\naccess = [\"hmac\", \"jwt\"]\n\
         [hosts.routes.upload]\nmodule = \"avatars\"\n",
        hmac = secret_file("hmac-upload-secret-0123456789abcdef0123").display(),
        hs = secret_file(HS_SECRET).display(),
    );
    let gw = upload_gateway(
        state.path(),
        &super::uploads::dir_store(root.path()),
        &extra,
    );
    ready(&gw).await;
    let bytes = png();
    let hash = hex_sha256(&bytes);
    let send = |method: reqwest::Method, url: String, bearer: Option<String>, body: Vec<u8>| {
        let mut req = client()
            .request(method, url)
            .header("host", "up.test")
            .body(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let path = "/avatars/me.png";
    // No credential: 401, nothing stored.
    let r = send(reqwest::Method::PUT, gw.url(path), None, bytes.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An HMAC URL minted for GET only does not allow PUT.
    let get_only = gw.signed("hmac", &["--user", "u1", "https://up.test/avatars/me.png"]);
    let local =
        |signed: &str| signed.replacen("https://up.test", &format!("http://{}", gw.addr), 1);
    let r = send(reqwest::Method::PUT, local(&get_only), None, bytes.clone())
        .await
        .unwrap();
    assert!(r.status() == 401 || r.status() == 403, "{}", r.status());
    assert_eq!(rows(state.path()), "0 0 0");
    // Minted for PUT but for nobody: there is no owner to give the asset to.
    let nobody = gw.signed(
        "hmac",
        &["--methods", "PUT", "https://up.test/avatars/me.png"],
    );
    let r = send(reqwest::Method::PUT, local(&nobody), None, bytes.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("names the user"));
    assert_eq!(rows(state.path()), "0 0 0");
    // Minted for PUT by user u1: u1's asset in the route's module.
    let put = gw.signed(
        "hmac",
        &[
            "--user",
            "u1",
            "--methods",
            "PUT",
            "https://up.test/avatars/me.png",
        ],
    );
    let r = send(reqwest::Method::PUT, local(&put), None, bytes.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        (answer["hash"].as_str(), answer["type"].as_str()),
        (Some(hash.as_str()), Some("image/png"))
    );
    let id = answer["id"].as_str().unwrap().to_string();
    let url = format!("sqlite://{}", state.path().join("assets.db").display());
    let store = media::assets::store::AssetStore::connect(&url)
        .await
        .unwrap();
    let asset = store.asset(&id).await.unwrap().expect("recorded");
    assert_eq!(
        (asset.owner.as_str(), asset.module.as_str()),
        ("u1", "avatars")
    );
    assert_eq!(asset.visibility, media::assets::Visibility::Private);
    // A JWT's subject owns what it POSTs; the body's type is sniffed, not the client's.
    let mut other = png();
    other.extend_from_slice(b"-v2");
    let r = send(
        reqwest::Method::POST,
        gw.url(path),
        Some(jwt("u2")),
        other.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let answer: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let asset = store
        .asset(answer["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (asset.owner.as_str(), asset.module.as_str()),
        ("u2", "avatars")
    );
    // A body of a type the uploads do not take: 415, nothing left.
    let r = send(
        reqwest::Method::PUT,
        gw.url(path),
        Some(jwt("u2")),
        b"<html></html>".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(rows(state.path()), "2 2 2");
    let metrics = gw.metrics().await;
    for line in [
        "assetgate_asset_ingest_total{path=\"route\",result=\"stored\"} 2",
        "assetgate_asset_ingest_total{path=\"route\",result=\"unsupported_type\"} 1",
        "assetgate_asset_ingest_duration_seconds_count{path=\"route\"} 2",
    ] {
        assert!(metrics.contains(line), "no {line} in:\n{metrics}");
    }
    assert_eq!(files(root.path()).len(), 2, "{:?}", files(root.path()));
    store.close().await;
}

#[test]
fn an_upload_route_needs_the_asset_store() {
    let (ok, out) = check_config(
        "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[backends.files]\nkind = \"dir\"\nroot = \".\"\n\
         [[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\npath = \"/up\"\nbackend = \"files\"\naccess = \"jwt\"\n\
         [hosts.routes.upload]\nmodule = \"a b\"\n",
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("hosts[0].routes[0].upload: an upload route needs [assets]"),
        "{out}"
    );
    assert!(out.contains("hosts[0].routes[0].upload.module"), "{out}");
}
