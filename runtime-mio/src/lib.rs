//! The Cocaine node's event loop on `mio`: one `Poll` for every ZeroMQ endpoint (through its
//! `ZMQ_FD`), every worker's Unix socket and output pipe, and the signals the node reacts to
//! (SIGCHLD to reap workers, SIGINT and SIGTERM to stop). Timers are the core's
//! `poll_timeout`. The loop holds no policy: what it does on a wake-up lives once in
//! [`cocaine_os::host`], shared with every runtime.
//!
//! What a runtime supplies, whatever its IO model (this one, smol, a future tokio or io_uring
//! one), is small:
//! - [`cocaine_os::host::Readiness`]: watch a descriptor for readability on behalf of a
//!   `Source`, add or drop interest in writability, stop watching (here: mio tokens in
//!   `io.rs`, edge-triggered registrations);
//! - a wait: until any watched source is ready, or `Host::next_timeout`, or not at all when
//!   `Host::settle` says an endpoint is still busy (`ZMQ_FD` is edge-triggered: the host
//!   re-checks every endpoint after every wake-up, so the runtime need not);
//! - signals: SIGCHLD, SIGINT and SIGTERM handed to `Host::signal`;
//! - after each wait, `Host::woke` and `Host::ready` for each ready source.
//!
//! A completion-based runtime (io_uring) would keep a read or poll operation in flight per
//! watched source and report completions as readiness; tokio would wrap each descriptor in
//! `AsyncFd` and wait as `cocaine-smol` does with `Async`.
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
