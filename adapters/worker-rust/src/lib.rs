//! Write Cocaine workers in Rust.
//!
//! A worker is a process the node spawns for an app of type `binary`. It connects to the Unix
//! socket the node names, introduces itself, and then runs jobs: the node sends an event name
//! and the request, the worker answers with reply chunks and an end, or with an error
//! (docs/protocol.md §1). This crate does the protocol; you register one handler per event name,
//! as in every Cocaine SDK:
//!
//! ```no_run
//! use cocaine_worker::Worker;
//!
//! fn main() -> Result<(), cocaine_worker::WorkerError> {
//!     Worker::from_env()?
//!         // Plain: the whole request in, chunks out.
//!         .on("echo", |request: Vec<u8>| Ok(vec![request]))
//!         // Streaming: request chunks as they arrive, reply chunks as they are made.
//!         .on_stream("stream_echo", |request, mut response| {
//!             for chunk in request {
//!                 response.write(&chunk)?;
//!             }
//!             Ok(())
//!         })
//!         .run()
//! }
//! ```
//!
//! Behaviour every SDK shares:
//! - No handler for the event: that job fails with 404; the others go on.
//! - A handler's `Err(HandlerError)` fails the job with its code (502 if none); a panic is
//!   caught and fails the job with 502 and the panic message. The worker stays up. (Build
//!   workers with `panic = "unwind"`, the default, for this to hold.)
//! - Each job runs on a thread of its own (the one that read its request; another takes over
//!   reading), so jobs overlap when the node's `concurrency` allows; handlers must be
//!   `Send + Sync`. [`Worker::inline`] runs plain handlers on the reading thread instead,
//!   one at a time, for fast handlers where a thread hand-off per job would dominate.
//! - A cancel from the node fails the job with 499 at once; the handler keeps running until it
//!   notices ([`Response::write`] returns [`ResponseError::Cancelled`], the request stream
//!   ends), and whatever it sends after is dropped.
//! - A terminate from the node stops new jobs; [`Worker::run`] returns `Ok(())` once the
//!   running ones are done. The node going silent past `COCAINE_TIMEOUT_MS` ends it with
//!   [`WorkerError::NodeSilent`]; the node closing the socket ends it at once with `Ok(())`.
//!
//! Map of the crate: [`config`] reads the spawn settings; `worker` holds the builder and the
//! run loop; `group` runs the threads that take turns reading and running jobs; `session`
//! reads and turns messages into jobs; `output` is the shared, locked writer; `stream` holds
//! [`RequestStream`] and [`Response`]; [`native`] is the native app ABI from Rust, with
//! [`export_native!`] to make a Rust `cdylib` a native app (docs/protocol.md §9).

pub mod config;
mod error;
mod group;
mod handler;
pub mod native;
mod output;
mod session;
mod stream;
mod worker;

pub use cocaine_core::codec::worker::JobMeta;
pub use config::{Config, ConfigError};
pub use error::{HandlerError, ResponseError, WorkerError, DEFAULT_ERROR_CODE};
pub use stream::{RequestStream, Response};
pub use worker::Worker;
