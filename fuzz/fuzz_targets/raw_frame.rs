//! The raw server's `line` and `length` framings: requests under any split of the stream,
//! limits, replies that decode back. The checks live in `cocaine_core::codec::fuzzing` so
//! `cargo test` replays the corpus too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cocaine_core::codec::fuzzing::check_raw_stream(data);
});
