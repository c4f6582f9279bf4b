//! Any bytes as a tombstone (see `cocaine_core::cluster::replication_fuzzing::check_tombstone`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::cluster::replication_fuzzing::check_tombstone(data));
