//! A response's age and lifetime from `Age`, `Date`, `Expires`, `Last-Modified` and
//! `Cache-Control`: never a panic or overflow, whatever the origin sends; the heuristic
//! lifetime never exceeds its bound.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use cache::freshness::{explicit_lifetime, heuristic_lifetime, initial_age, Exchange};
use libfuzzer_sys::fuzz_target;
use pingora::cache::cache_control::CacheControl;
use pingora::http::ResponseHeader;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let [times, lines] = common::fields(data, 2)[..] else {
        return;
    };
    let at = |i: usize| {
        let b = times.get(i * 4..i * 4 + 4).unwrap_or(&[0; 4]);
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(u32::from_le_bytes(b.try_into().unwrap()) as u64 * 2)
    };
    let exchange = Exchange {
        sent: at(0),
        received: at(1),
    };
    let headers = common::headers(lines);
    let mut response = ResponseHeader::build(200, None).unwrap();
    for (name, value) in &headers {
        response.append_header(name.clone(), value.clone()).unwrap();
    }
    let cc = CacheControl::from_resp_headers(&response);
    let _ = initial_age(&headers, exchange);
    let _ = explicit_lifetime(cc.as_ref(), &headers, exchange.received);
    let max = Duration::from_secs(86_400);
    if let Some(guess) = heuristic_lifetime(&headers, exchange.received, max) {
        assert!(guess <= max);
    }
});
