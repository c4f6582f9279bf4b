//! The thread backend (docs/manifest.md): a native app's worker on a thread of the node.
//!
//! The thread runs the same worker loop as the `cocaine-native-host` process
//! ([`cocaine_native::serve`]) and connects to the worker's Unix socket like a process would,
//! so the core cannot tell the two apart: pool sizing, concurrency, heartbeats, timeouts and
//! stats are the same. Only starting and stopping differ, and the host handles those:
//! - start: the host listens at the worker's socket as for a process, then calls [`start`];
//! - normal end: the worker loop returns (terminate drained, channel closed, node silent)
//!   and the thread reports `WorkerExited` through the [`Inbox`], after any reason it failed
//!   with as a `WorkerStderr` line (a library that does not load, a failed create);
//! - kill: a thread cannot be killed. When the core asks to signal a thread worker (a job
//!   ignored its cancel past `termination-timeout`, or the worker never handshook), the host
//!   retires it instead: it closes the worker's channel, forgets it and reports it exited at
//!   once. The thread is detached: it finishes its call into the library on its own, its
//!   late output goes nowhere (the channel is closed), and it then ends, dropping its
//!   instance. Its own exit report is then dropped by the host. The node stays up; a call
//!   that never returns keeps its thread until the node exits.

use std::ffi::OsString;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::thread;

use cocaine_core::node::{Input, SpawnSpec};
use cocaine_core::process::ExitStatus;
use cocaine_worker::Config;

use crate::inbox::Inbox;

/// The status a retired thread worker is reported with, by the signal the core asked for:
/// as if that signal had ended a process.
pub fn retired_status(signal: cocaine_core::process::Signal) -> ExitStatus {
    ExitStatus::Signal(match signal {
        cocaine_core::process::Signal::Term => libc::SIGTERM,
        cocaine_core::process::Signal::Kill => libc::SIGKILL,
    })
}

/// Starts the thread of `spec`'s worker: `spec.argv` is the library then the manifest's
/// `args`; `spec.env` the worker environment of docs/protocol.md §1. The host must already listen
/// at `spec.socket`.
///
/// # Errors
///
/// The worker environment is malformed, or the thread cannot be started.
pub fn start(spec: &SpawnSpec, inbox: Inbox) -> io::Result<()> {
    let library = spec
        .argv
        .first()
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no library to load"))?;
    let args = spec.argv.get(1).cloned().unwrap_or_default();
    let socket = vec![
        OsString::from("--socket"),
        spec.socket.clone().into_os_string(),
    ];
    let config = Config::from_parts(socket, |name| {
        spec.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| OsString::from(v))
    })
    .map_err(io::Error::other)?;
    let worker = spec.worker;
    thread::Builder::new()
        .name(format!("cocaine-{worker}"))
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                cocaine_native::serve(config, &library, &args)
            }));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some("the native worker thread panicked".to_owned()),
            };
            let status = match failure {
                None => ExitStatus::Code(0),
                Some(line) => {
                    inbox.push(Input::WorkerStderr { worker, line });
                    ExitStatus::Code(1)
                }
            };
            inbox.push(Input::WorkerExited { worker, status });
        })
        .map(drop)
}
