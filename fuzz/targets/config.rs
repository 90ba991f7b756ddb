//! The config file: any TOML text is validated without a panic, and without creating or
//! changing any file (run it from a scratch folder: relative paths resolve there). A config
//! that validates validates again from the same text (no hidden state).
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use assetgate::config::from_toml_str;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new(".");
    if from_toml_str(text, base).is_ok() {
        assert!(from_toml_str(text, base).is_ok());
    }
});
