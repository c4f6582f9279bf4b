//! The worker channel: framing under any split of the stream, decoding, re-encoding.
//! The checks live in `cocaine_core::codec::fuzzing` so `cargo test` replays the corpus too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cocaine_core::codec::fuzzing::check_worker_stream(data);
});
