//! Any bytes as a signed native open, as a node reads it: see
//! `cocaine_core::auth::fuzzing::check_signed_open`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::auth::fuzzing::check_signed_open(data));
