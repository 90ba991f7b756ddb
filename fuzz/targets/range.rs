//! `Range`: never a panic or overflow; a partial answer lies inside the body, and the
//! syntax check agrees with the decision about what is a single valid range.
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use kit::range::{decide, syntax, RangeDecision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap()) >> (data[0] % 64);
    let header = &data[8..];
    let _ = syntax(header);
    let Ok(text) = std::str::from_utf8(header) else {
        return;
    };
    match decide(Some(text), len) {
        RangeDecision::Partial { start, end } => {
            assert!(
                start <= end && end < len,
                "{text:?} on {len}: {start}-{end}"
            );
        }
        RangeDecision::Unsatisfiable | RangeDecision::Full => {}
    }
});
