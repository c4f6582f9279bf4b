//! Any bytes given as a manifest: see `cocaine_core::manifest::fuzzing::check_manifest`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::manifest::fuzzing::check_manifest(data));
