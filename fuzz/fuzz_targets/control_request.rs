//! Any bytes as a control request, split into frames on their first byte: see
//! `cocaine_core::control::fuzzing::check_control_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::control::fuzzing::check_control_request(data));
