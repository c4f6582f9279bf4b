//! Any bytes as a sealed body, as a node reads it: see
//! `cocaine_core::auth::seal_fuzzing::check_sealed_body`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::auth::seal_fuzzing::check_sealed_body(data));
