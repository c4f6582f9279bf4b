//! A ZMTP peer's byte stream in fuzzed splits to a ROUTER-side connection
//! (`cocaine_core::zmtp`). The check lives in `cocaine_core::zmtp::fuzzing` so `cargo test`
//! replays the corpus too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cocaine_core::zmtp::fuzzing::check_zmtp_stream(data);
});
