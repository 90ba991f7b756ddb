//! The query string as keyed and forwarded: never a panic; the forwarded form is already
//! normal (normalising it again changes nothing, so a request and its forwarded copy share one
//! cache entry), sorted by name, and holds only the allowed names.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use cache::key::query_pairs;
use kit::params::forwarded_query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [allowed, query] = common::fields(data, 2)[..] else {
        return;
    };
    let query = common::text(query);
    let allowed: Vec<String> = common::text(allowed)
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let _ = query_pairs(Some(&query)).count();
    for keys in [None, Some(&allowed[..])] {
        let Some(once) = forwarded_query(Some(&query), keys) else {
            continue;
        };
        let twice = forwarded_query(Some(&once), keys);
        assert_eq!(twice.as_deref(), Some(once.as_str()), "from {query:?}");
        let names: Vec<&str> = once
            .split('&')
            .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
            .collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "{once:?}");
        assert!(!once.split('&').any(str::is_empty), "{once:?}");
        if let Some(keys) = keys {
            assert!(
                names.iter().all(|n| keys.iter().any(|k| k == n)),
                "{once:?}"
            );
        }
    }
});
