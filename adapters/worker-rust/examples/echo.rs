//! The echo worker: the worker of the node's end-to-end benchmark and of this crate's tests.
//!
//! Handlers:
//! - `echo` (plain): replies with the request as one chunk.
//! - `stream_echo` (streaming): writes each request chunk back as it arrives.
//! - `fail`: fails; with the code in the request if it is a number, else with the default 502.
//! - `sleep`: sleeps the number of milliseconds in the request, then replies with it.
//! - `panic`: panics, to show the worker survives it.
//!
//! With `COCAINE_INLINE=1` in its environment (set by the manifest's `engine.inline`, else
//! inherited from the node's own), the plain handlers run inline ([`Worker::inline`]): faster
//! for the benchmark's tiny jobs, but jobs no longer overlap, so the default stays off for the
//! tests that check they do.

use std::process::ExitCode;
use std::time::Duration;

use cocaine_worker::{HandlerError, Worker};

fn main() -> ExitCode {
    let worker = match Worker::from_env() {
        Ok(worker) => worker,
        Err(err) => {
            eprintln!("cocaine-echo-worker: {err}");
            return ExitCode::from(2);
        }
    };
    let inline = std::env::var_os("COCAINE_INLINE").is_some_and(|v| v == "1");
    let result = worker
        .inline(inline)
        .on("echo", |request| Ok(vec![request]))
        .on_stream("stream_echo", |request, mut response| {
            for chunk in request {
                response.write(&chunk)?;
            }
            Ok(())
        })
        .on("fail", |request| {
            let text = String::from_utf8_lossy(&request);
            Err(match text.trim().parse::<u32>() {
                Ok(code) => HandlerError::with_code(code, format!("failed with {code}")),
                Err(_) => HandlerError::new(format!("failed on {text:?}")),
            })
        })
        .on("sleep", |request| {
            let ms: u64 = std::str::from_utf8(&request)?.trim().parse()?;
            std::thread::sleep(Duration::from_millis(ms));
            Ok(vec![request])
        })
        .on("panic", |_| panic!("asked to panic"))
        .run();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cocaine-echo-worker: {err}");
            ExitCode::FAILURE
        }
    }
}
