//! The sans-IO core of Cocaine, an event-driven application server.
//!
//! Everything Cocaine decides lives here, as a deterministic state machine in the style of
//! str0m's `Rtc` and quinn-proto's `Connection`: it never reads a clock, a socket, a file,
//! the environment or a random source. Time and bytes come in as inputs; what to do goes out
//! as plain data. A runtime (`cocaine-mio`, `cocaine-smol`) owns the sockets, processes and
//! timers and runs this loop:
//!
//! ```no_run
//! use std::time::{Instant, SystemTime};
//! use cocaine_core::node::{Input, Node, NodeConfig, Output};
//! use cocaine_core::Now;
//!
//! # fn wait_for_io_until(_: Option<Instant>) -> Vec<Input> { Vec::new() }
//! # fn execute(_: Output) {}
//! let mut node = Node::new(NodeConfig::default());
//! loop {
//!     // 1. Do everything the node asked for: send, bind, spawn, kill, publish, log.
//!     while let Some(output) = node.poll_output() {
//!         execute(output);
//!     }
//!     // 2. Sleep until IO happens or the node's next deadline, whichever comes first.
//!     let inputs = wait_for_io_until(node.poll_timeout());
//!     // 3. Feed back what happened, stamped with both clocks read once.
//!     let now = Now::new(Instant::now(), SystemTime::now());
//!     node.handle_input(now, Input::Tick);
//!     for input in inputs {
//!         node.handle_input(now, input);
//!     }
//! }
//! ```
//!
//! Inputs are bytes from endpoints and workers, worker exits, time, and operator actions
//! (deploy, remove, shut down). Outputs are sends, binds, spawns, kills, bytes for workers,
//! publications and log lines. The same input sequence always yields the same output
//! sequence, so the whole server can be tested, fuzzed and replayed without IO.
//!
//! Map of the crate:
//! - [`node`]: the node, its inputs and outputs, and the drivers that turn each task type's
//!   wire into jobs (native-server, zeromq-server, sinks, subscriber, timers, cron,
//!   filesystem monitor).
//! - [`engine`]: one app's engine: admission, queue, dispatch, policies, the worker pool and
//!   its lifecycle, crash loops; [`engine::pool`] holds the pluggable pool-sizing policies.
//! - [`cron`]: cron schedules and their next fire time in a time zone.
//! - [`manifest`]: parsing and validating app manifests.
//! - [`codec`]: the worker channel and native protocol codecs.
//! - [`cluster`]: nodes working together; [`cluster::balance`] chooses a node by load.
//! - [`zmtp`]: ZMTP 3.x as a ROUTER speaks it (the node's own request/reply endpoints).
//! - [`stats`]: counters and fixed-memory latency histograms.
//! - `sim` (feature `sim`): simulated workers for tests, benchmarks and fuzzing.
//! - `*::fuzzing` (feature `fuzzing`): the property checks behind the `fuzz/` targets.

pub mod arena;
pub mod auth;
pub mod cluster;
pub mod codec;
pub mod control;
pub mod cron;
pub mod engine;
pub mod http;
pub mod ids;
mod json;
pub mod manifest;
pub mod node;
pub mod process;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stats;
pub mod status;
mod suggest;
pub mod time;
pub mod timers;
pub mod zmtp;

pub use ids::{AppId, ConnId, EndpointId, WorkerId};
pub use time::Now;
