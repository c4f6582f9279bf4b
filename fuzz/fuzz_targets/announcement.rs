//! Any bytes as an announcement datagram: decoding, re-encoding, and the peer table's
//! counters. The checks live in `cocaine_core::cluster::fuzzing` so `cargo test` replays the
//! corpus too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::cluster::fuzzing::check_announcement(data));
