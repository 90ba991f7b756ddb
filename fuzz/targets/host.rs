//! The Host header (and a request's authority): never a panic; an accepted host (empty is
//! allowed: RFC 9112 §3.2 has clients send an empty Host when the URI has no authority) holds
//! no whitespace, `/`, `@` or control character, and its canonical form is
//! stable (lower-case, no trailing dot).
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use kit::host::{canonical, parse_host};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(host) = parse_host(data) else { return };
    assert!(
        !host.bytes().any(|b| b.is_ascii_whitespace()
            || b == b'/'
            || b == b'@'
            || b < 0x20
            || b == 0x7f),
        "{host:?}"
    );
    let once = canonical(host);
    assert_eq!(canonical(&once), once, "{host:?}");
    assert!(!once.bytes().any(|b| b.is_ascii_uppercase()), "{once:?}");
});
