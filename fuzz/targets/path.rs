//! Path normalisation: never a panic; what it accepts is absolute, has no empty, `.` or `..`
//! segment, no control character or backslash, and survives being encoded for a request
//! line and normalised again unchanged (the object key the backend gets is the one checked).
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use kit::path::{encode, has_prefix, is_normalised, normalise};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = common::text(data);
    // Whatever the input, the two definitions of a normal path agree on it.
    if is_normalised(&raw) {
        let encoded = encode(&raw).to_string();
        if encoded.len() <= kit::path::MAX_PATH_BYTES {
            assert_eq!(normalise(&encoded).as_deref(), Ok(raw.as_str()));
        }
    }
    let Ok(path) = normalise(&raw) else { return };
    assert!(is_normalised(&path), "{path:?}");
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    assert!(!path.contains('\\'), "{path:?}");
    assert!(!path.bytes().any(|b| b < 0x20 || b == 0x7f), "{path:?}");
    assert!(path.split('/').all(|s| s != "." && s != ".."), "{path:?}");
    let encoded = encode(&path).to_string();
    if encoded.len() <= kit::path::MAX_PATH_BYTES {
        assert_eq!(
            normalise(&encoded).as_deref(),
            Ok(path.as_str()),
            "from {raw:?}"
        );
    }
    // A path is under itself and under `/`, and a prefix check never matches mid-segment.
    assert!(has_prefix(&path, &path) && has_prefix(&path, "/"));
    if let Some((head, _)) = path[1..].split_once('/') {
        let longer = format!("/{head}x");
        assert!(!has_prefix(&path, &longer) || path.starts_with(&format!("{longer}/")));
    }
});
