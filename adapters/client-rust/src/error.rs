//! What can go wrong with a call.

use cocaine_core::codec::DecodeError;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// ZeroMQ refused an operation (a bad endpoint, a closed context).
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
    /// No answer (or no room to send) before the deadline. A call that timed out is cancelled
    /// on the node and its late replies are dropped.
    #[error("timed out")]
    Timeout,
    /// The node failed the request with `[6, sid, code, message]`.
    #[error("remote error {code}: {message}")]
    Remote {
        /// The code, e.g. 404 (no such event), 499 (cancelled), 503 (queue full).
        code: u32,
        /// The node's or the app's text.
        message: String,
    },
    /// A frame from the node could not be decoded (or was a client-to-node message). The
    /// frame is dropped; the connection stays usable.
    #[error("bad reply frame: {0}")]
    Protocol(#[from] DecodeError),
    /// A request could not be signed (the signer failed, no random source for nonces).
    #[error("{0}")]
    Sign(String),
    /// A request could not be sealed, or its sealed reply did not open.
    #[error("{0}")]
    Seal(String),
}
