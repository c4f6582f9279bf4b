//! Arbitrary bytes as a sequence of node inputs (client messages, worker bytes, exits, time,
//! binds, removals, shutdown) against two apps with every driver; properties checked after
//! every step. The logic lives in `cocaine_core::node::fuzzing` so that `cargo test` replays
//! the corpus with the same checks.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cocaine_core::node::fuzzing::check_node_inputs(Instant::now(), data);
});
