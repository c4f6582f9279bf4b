//! The Cocaine node's event loop on `mio`: one `Poll` for every ZeroMQ endpoint (through its
//! `ZMQ_FD`), every worker's Unix socket and output pipe, and the signals the node reacts to
//! (SIGCHLD to reap workers, SIGINT and SIGTERM to stop). Timers are the core's
//! `poll_timeout`. The loop holds no policy: it maps descriptors to ids, feeds inputs and
//! carries out outputs.
//!
//! What a runtime must supply, whatever its IO model (this one, smol, a future tokio or
//! io_uring one): bind/connect ZeroMQ sockets and re-check their events after every
//! operation (`ZMQ_FD` is edge-triggered); listen on a worker's socket path before spawning
//! it; spawn and signal processes; report a worker's exit only after draining its output;
//! sleep until `poll_timeout` or IO; read `Now` once per wake-up.

mod io;
mod run;

pub use run::{run, Control, RunError};
