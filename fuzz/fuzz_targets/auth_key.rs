//! Any bytes as a PEM public key or as a message and signature: see
//! `cocaine_core::auth::fuzzing::check_auth_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::auth::fuzzing::check_auth_input(data));
