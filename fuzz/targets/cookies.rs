//! Cookies, `Authorization: Bearer` and query parameters as the credential schemes read
//! them: never a panic; decoding is exact (a malformed escape is refused, a decoded value re-encoded decodes the same) and
//! stripping credentials from a query leaves none of them behind.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use access::bearer;
use kit::params::{cookies, decode, find, find_cookies, pairs, strip};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 3] = ["ag_sig", "Signature", "token"];

fuzz_target!(|data: &[u8]| {
    let [query, lines] = common::fields(data, 2)[..] else {
        return;
    };
    let query = common::text(query);
    let headers = common::headers(lines);
    for (name, value) in pairs(&query) {
        assert!(!name.contains('&') && !value.contains('&'));
        let well_formed = value.split('%').skip(1).all(|after| {
            after.len() >= 2 && after.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
        });
        if !well_formed {
            assert!(
                decode(value).is_none(),
                "a malformed escape decoded: {value:?}"
            );
        }
        if let Some(decoded) = decode(value) {
            let encoded =
                percent_encoding::utf8_percent_encode(&decoded, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            assert_eq!(decode(&encoded).as_deref(), Some(&*decoded));
        }
    }
    let _ = find(Some(&query), &NAMES);
    let _ = bearer(&headers);
    let _ = cookies(&headers).count();
    let _ = find_cookies(&headers, &NAMES);
    if let Some(left) = strip(Some(&query), &NAMES) {
        for (name, _) in pairs(&left) {
            assert!(
                !NAMES.contains(&name),
                "{name} left in {left:?} from {query:?}"
            );
        }
    }
});
