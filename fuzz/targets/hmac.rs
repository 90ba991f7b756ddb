//! The gateway's HMAC tokens: never a panic on any query; a token minted for a path always
//! verifies for it; and no change to a minted token's query makes it verify for another
//! user, token id or expiry.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use access::hmac::{verify, Claims, HmacKeys, Limits, Scope};
use common::{fields, headers, method, request, text, NOW};
use kit::path::normalise;
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const LIMITS: Limits = Limits {
    max_lifetime: 86_400,
    skew: 60,
};

fuzz_target!(|data: &[u8]| {
    let keys = HmacKeys::new([("k1", SECRET)], ["old"]);
    let [mode, path, query, user, mutation, lines] = fields(data, 6)[..] else {
        return;
    };
    let (path, query, user) = (text(path), text(query), text(user));
    let headers = headers(lines);
    let m = method(mode.first().copied().unwrap_or(0));
    // Any query against any path.
    if let Ok(normal) = normalise(&path) {
        let _ = verify(&keys, &request(&m, &normal, Some(&query), &headers), LIMITS);
    }
    // A minted token, then the fuzzer's edit of it.
    let Ok(path) = normalise(&path) else { return };
    let prefix = mode.get(1).is_some_and(|b| b & 1 == 1);
    let claims = Claims {
        key_id: Cow::Borrowed("k1"),
        host: Cow::Borrowed("a.test"),
        scope: if prefix {
            Scope::Prefix(Cow::Borrowed(&path))
        } else {
            Scope::Path(Cow::Borrowed(&path))
        },
        issued_at: NOW - 10,
        expires_at: NOW + 3600,
        not_before: None,
        ip: None,
        user: (!user.is_empty()).then_some(Cow::Borrowed(&user)),
        token_id: Some(Cow::Borrowed("t1")),
        methods: None,
    };
    let minted = claims.to_query(SECRET);
    let get = http::Method::GET;
    let grant = verify(
        &keys,
        &request(&get, &path, Some(&minted), &headers),
        LIMITS,
    )
    .unwrap_or_else(|e| panic!("minted token refused ({e:?}): {minted}"));
    assert_eq!(grant.user.as_deref(), claims.user.as_deref());
    let mut edited = minted.clone().into_bytes();
    if let [at, rest @ ..] = mutation {
        let at = *at as usize % (edited.len() + 1);
        edited.splice(
            at..at + usize::from(rest.first().copied().unwrap_or(0) % 4).min(edited.len() - at),
            rest.iter().skip(1).copied(),
        );
    }
    let edited = text(&edited);
    if let Ok(g) = verify(
        &keys,
        &request(&get, &path, Some(&edited), &headers),
        LIMITS,
    ) {
        assert_eq!(
            (g.user.as_deref(), g.token_id.as_deref(), g.expires_at),
            (
                grant.user.as_deref(),
                grant.token_id.as_deref(),
                grant.expires_at
            ),
            "an edited token verified with other claims: {edited}"
        );
    }
});
