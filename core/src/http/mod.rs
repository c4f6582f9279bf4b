//! HTTP/1.0 and 1.1 for the http-server task, sans IO: bytes and instants in, events and
//! bytes out. `docs/http.md` describes what a client and a handler see.
//!
//! A driver owns one [`HttpConn`] per TCP connection: it feeds it what it reads, turns the
//! events into jobs ([`HttpEvent::Request`] -> submit, [`HttpEvent::BodyChunk`] -> push a
//! chunk, [`HttpEvent::RequestEnd`] -> end the request, [`HttpEvent::Cancel`] -> cancel),
//! hands it the jobs' replies, and writes what [`HttpConn::take_output`] gives back.
//!
//! The driver's whole loop, per connection:
//!
//! - accept: `HttpConn::new(config, task_name, now)`;
//! - bytes read: `feed(bytes, now)`; EOF or a socket error: `eof()`;
//! - a job's reply event for `seq`: `reply_head` / `reply_chunk` / `reply_end` /
//!   `reply_error(seq, code, message, now)` (a refused submission too: 503 and the like);
//! - after each call: act on the returned events, write `take_output()`, close the socket
//!   once `is_closed()` and the bytes are out, re-arm a timer at `header_deadline()` and call
//!   `timeout(now)` when it fires, and stop reading while `wants_read()` is false;
//! - a redeploy: `reconfigure(config, task_name)`; the connection stays open.
//!
//! - [`config`]: the task's keys and the route to an event.
//! - [`request`]: the request head (over `httparse`) and what it says about the body.
//! - [`body`]: Content-Length and chunked request bodies.
//! - [`response`]: response heads, body framing, error responses and statuses.
//! - [`conn`]: one connection: pipelining, ordering, keep-alive, the header timeout.
//! - `slot`: the reply owed to one request and when its bytes can go out.
//! - [`meta`]: the `meta.http` a handler sees.

pub mod body;
pub mod config;
pub mod conn;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod meta;
pub mod request;
pub mod response;
mod slot;

pub use crate::codec::http_wire::{HttpMeta, ReplyHead};
pub use config::{ConfigProblem, HttpConfig};
pub use conn::{HttpConn, HttpEvent, Request};
pub use request::Version;

/// Why the core answered a request itself instead of making it a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// The HTTP status sent.
    pub status: u16,
    /// Why, in a few words (for the response body and the log).
    pub reason: &'static str,
}

impl Reject {
    pub(crate) fn new(status: u16, reason: &'static str) -> Self {
        Reject { status, reason }
    }
}
