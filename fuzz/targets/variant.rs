//! The image-variant URL grammar: never a panic; a parsed spec's canonical path parses back
//! to the same spec, and what the route's allowlists accept stays within them.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use media::variants::spec::{hash_of, parse, parse_canonical};

fuzz_target!(|data: &[u8]| {
    let [path, accept] = common::fields(data, 2)[..] else {
        return;
    };
    let path = common::text(path);
    let accept = common::text(accept);
    let _ = hash_of(&path);
    if let Ok(spec) = parse_canonical(&path) {
        let canonical = spec.canonical_path();
        assert_eq!(
            parse_canonical(&canonical).as_ref(),
            Ok(&spec),
            "{path:?} → {canonical:?}"
        );
    }
    let limits = media::variants::limits::VariantLimits::default();
    if let Ok(spec) = parse(&path, &limits, Some(&accept)) {
        let canonical = spec.canonical_path();
        assert_eq!(
            parse_canonical(&canonical).as_ref(),
            Ok(&spec),
            "{path:?} → {canonical:?}"
        );
    }
});
