//! Any bytes as a `fetch` reply, split into frames on their first byte (see
//! `cocaine_core::cluster::replication_fuzzing::check_fetch_reply`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cocaine_core::cluster::replication_fuzzing::check_fetch_reply(data));
