//! Errors: what stops the worker ([`WorkerError`]), what a handler reports for one job
//! ([`HandlerError`]), and why a streaming reply could not be written ([`ResponseError`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use cocaine_core::codec::DecodeError;

use crate::config::ConfigError;

/// Code sent when a handler fails without choosing one, or panics (docs/protocol.md §1).
pub const DEFAULT_ERROR_CODE: u32 = 502;

/// Why [`Worker::run`](crate::Worker::run) returned an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The spawn configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node's socket could not be reached.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Reading from or writing to the node failed.
    #[error("worker channel: {0}")]
    Io(#[from] io::Error),
    /// The node said nothing for longer than the configured timeout, so it is presumed gone.
    #[error("the node was silent for {0:?}")]
    NodeSilent(Duration),
    /// A frame's length exceeded the limit: framing is lost and the channel cannot go on.
    #[error("worker channel framing lost: {0}")]
    Framing(DecodeError),
}

/// A handler's failure for one job, sent to the node as `[6, sid, code, message]`.
///
/// Any `std::error::Error` converts into one (code 502), so handlers can use `?`. That blanket
/// conversion is why this type does not itself implement `std::error::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    /// The code for the node; `None` means [`DEFAULT_ERROR_CODE`].
    pub code: Option<u32>,
    /// Text for the client.
    pub message: String,
}

impl HandlerError {
    /// An error with the default code 502.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            code: None,
            message: message.into(),
        }
    }

    /// An error with an explicit code.
    pub fn with_code(code: u32, message: impl Into<String>) -> Self {
        HandlerError {
            code: Some(code),
            message: message.into(),
        }
    }

    /// The code that goes on the wire.
    pub fn wire_code(&self) -> u32 {
        self.code.unwrap_or(DEFAULT_ERROR_CODE)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.wire_code(), self.message)
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(err: E) -> Self {
        HandlerError::new(err.to_string())
    }
}

/// Why a [`Response`](crate::Response) call did not reach the node.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The node cancelled the job (or it ended otherwise): stop working on it.
    #[error("the job was cancelled")]
    Cancelled,
    /// The handler already closed the response or reported an error.
    #[error("the response is already closed")]
    Closed,
    /// The chunk would make a frame over the node's max-message: the job was failed with 413.
    #[error("reply chunk of {len} bytes is over max-message ({limit} bytes)")]
    TooLarge {
        /// The chunk's length.
        len: usize,
        /// The node's max-message.
        limit: usize,
    },
    /// Writing to the node failed; the worker is going down.
    #[error("worker channel: {0}")]
    Io(#[from] io::Error),
}
