//! Any bytes given as a manifest: `Manifest::parse` must return, never panic, and an error
//! must always carry at least one problem.
#![no_main]

use cocaine_core::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Manifest::parse("fuzz", data, None) {
        assert!(!e.problems.is_empty());
        let _ = e.to_string();
    }
});
