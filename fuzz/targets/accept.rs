//! `Accept` negotiation of a variant's format: never a panic, always one of the formats on
//! offer (or JPEG, which every client decodes).
#![no_main]
// A fuzz target reports by panicking: unwrap is its assert.
#![allow(clippy::unwrap_used)]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use media::variants::spec::{negotiate, Format};

const ALL: [Format; 4] = [Format::Avif, Format::Webp, Format::Png, Format::Jpeg];

fuzz_target!(|data: &[u8]| {
    let Some((pick, accept)) = data.split_first() else {
        return;
    };
    let offered: Vec<Format> = ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| pick & (1 << i) != 0)
        .map(|(_, f)| *f)
        .collect();
    let accept = common::text(accept);
    let chosen = negotiate(Some(&accept), &offered);
    assert!(
        offered.contains(&chosen) || chosen == Format::Jpeg,
        "{chosen:?} not offered in {offered:?} for {accept:?}"
    );
});
