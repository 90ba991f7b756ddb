//! Conditional requests (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`, `If-Range`) against a stored validator: never a panic, and a
//! representation whose ETag the client lists in `If-None-Match` is never sent whole.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use kit::conditional::{evaluate, if_range_allows, none_match, Precondition};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let [etag, modified, lines] = common::fields(data, 3)[..] else {
        return;
    };
    let etag = common::text(etag);
    let secs = modified
        .iter()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(*b as u64));
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(secs % (1 << 40));
    let headers = common::headers(lines);
    let decision = evaluate(&headers, &etag, modified);
    let _ = if_range_allows(&headers, &etag, modified);
    if none_match(&headers, &etag) && headers.get(http::header::IF_MATCH).is_none() {
        assert!(
            !matches!(decision, Precondition::Proceed),
            "If-None-Match matched {etag:?} but the answer proceeds: {headers:?}"
        );
    }
});
