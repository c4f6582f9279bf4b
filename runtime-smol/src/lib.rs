//! The Cocaine node's event loop on smol: one task, run by `smol::block_on`, owns the node.
//! It settles (feeds inputs, carries out outputs, drains endpoints, flushes channels: all in
//! [`cocaine_os::host`], shared with `cocaine-mio`), then waits for whichever comes first:
//! a watched descriptor (each wrapped in `async_io::Async`), a signal (SIGCHLD, SIGINT,
//! SIGTERM through signal-hook's self-pipe, itself watched through `Async`), or the node's
//! `poll_timeout` as an `async_io::Timer`. An idle node sleeps in the reactor and uses no CPU.
//!
//! What a third runtime (tokio, io_uring) would implement, as this one does:
//! - [`cocaine_os::host::Readiness`]: watch a descriptor for readability on behalf of a
//!   `Source`, add or drop interest in writability, stop watching (here `io.rs`: a map of
//!   `Async` handles; tokio would hold `AsyncFd`s; io_uring would keep a poll operation in
//!   flight per descriptor and report completions as readiness);
//! - a wait over all watched sources, the signals and `Host::next_timeout`, not sleeping when
//!   `Host::settle` says an endpoint is still busy (`ZMQ_FD` is edge-triggered: the host
//!   re-checks every endpoint's `ZMQ_EVENTS` after every wake-up, so the runtime need not);
//! - after each wait, `Host::woke`, then `Host::signal` for each signal caught and
//!   `Host::ready` for each ready source.
//!
//! Entry point: `run(node, setup, observe)`. [`Setup`] holds the inputs the node takes first
//! (command-line deploys, then the apps and jobs restored from the store), the app store if
//! there is one (written on a thread of its own; `Output::Store` comes back as
//! `Input::Stored`), and the [`Inbox`] through which other threads (the folder watcher) feed
//! the running node; the loop watches the inbox like any socket. `observe` sees every output
//! that is not IO (logs, app events, `Output::Fatal`) and may ask for a shutdown.

mod io;
mod run;

pub use cocaine_os::host::{Control, Setup};
pub use cocaine_os::inbox::Inbox;
pub use run::{run, RunError};
