//! The HTTP/1.x request side of an http-server connection: heads, Content-Length and chunked
//! bodies, pipelining, limits. Any split of the stream must give the same events, bodies stay
//! within `max-body`, and nothing panics. The checks live in `cocaine_core::http::fuzzing`
//! so `cargo test` replays the corpus too.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static START: OnceLock<Instant> = OnceLock::new();
    cocaine_core::http::fuzzing::check_http_stream(data, *START.get_or_init(Instant::now));
});
