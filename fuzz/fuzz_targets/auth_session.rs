//! Any bytes as a native open in a session or as a session-open reply: see
//! `cocaine_core::auth::session::fuzzing::check_session_input`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::auth::session::fuzzing::check_session_input(data));
