//! ZMTP 3.x (RFC 37, "ZMTP 3.1", and RFC 23, 3.0) with the NULL mechanism, the way a ROUTER
//! socket speaks it: the node's own implementation of the wire libzmq uses, so that its
//! request/reply endpoints need no libzmq I/O thread between the socket and the node's loop.
//!
//! Sans-IO like the rest of the core: a [`Connection`] takes the bytes read from one peer and
//! gives back whole multipart messages, and holds the bytes to write to it (greeting,
//! handshake, PONGs, encoded replies) for the host to write. Any split of the byte stream
//! decodes the same.
//!
//! What a connection accepts:
//! - a greeting with signature `FF .. 7F`, major version 3 (minor 0 and 1, and later minors,
//!   are all spoken as 3.1: the differences, PING/PONG, are only ever answered), mechanism
//!   `NULL`;
//! - a READY command whose `Socket-Type` is one a ROUTER talks to: `DEALER`, `REQ` or
//!   `ROUTER`. The peer's `Identity` (3.0) or `Routing-Id` property is read and ignored:
//!   the endpoint names each connection itself (see the host's ZMTP endpoint);
//! - then message frames, and PING (answered with PONG), PONG and ERROR commands.
//!
//! Everything else is a [`ZmtpError`] for that connection alone, after which the connection
//! is poisoned. Handshake commands are bounded ([`MAX_COMMAND`]), and a frame over the frame
//! limit ([`Connection::with_max_frame`]) or that would take its message past the message
//! limit is refused from its header, before any of it is kept.

mod command;
mod conn;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod greeting;

pub use command::{encode_command, Command, Metadata};
pub use conn::{encode_message, Connection, Peer};
pub use greeting::{Greeting, GREETING_LEN};

/// The most bytes one command frame may carry (READY with its metadata, PING, ERROR): the
/// handshake thus ends within the greeting and one such frame.
pub const MAX_COMMAND: usize = 8 * 1024;

/// Frame flags (RFC 37 §"Framing").
pub(crate) const FLAG_MORE: u8 = 0x01;
pub(crate) const FLAG_LONG: u8 = 0x02;
pub(crate) const FLAG_COMMAND: u8 = 0x04;

/// Why a connection cannot go on. Each ends only the connection it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZmtpError {
    #[error("not a ZMTP 3 greeting (bad signature)")]
    BadSignature,
    #[error("ZMTP version {major} is not supported (3.0 and later only)")]
    OldVersion { major: u8 },
    #[error("security mechanism {0:?} is not supported (NULL only)")]
    Mechanism(String),
    #[error("expected a READY command, got {0}")]
    ExpectedReady(String),
    #[error("a ROUTER does not talk to a {0} socket")]
    SocketType(String),
    #[error("READY without a Socket-Type")]
    NoSocketType,
    #[error("malformed command: {0}")]
    Malformed(&'static str),
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("frame flags {0:#04x} set reserved bits")]
    ReservedFlags(u8),
    #[error("command frame of {size} bytes is over the limit of {limit}")]
    CommandTooLarge { size: u64, limit: usize },
    #[error("frame of {size} bytes is over the limit of {limit}")]
    FrameTooLarge { size: u64, limit: usize },
    #[error("message of at least {size} bytes is over the limit of {limit}")]
    TooLarge { size: u64, limit: usize },
    #[error("peer reported an error: {0}")]
    Peer(String),
    #[error("connection ended in the middle of {0}")]
    Truncated(&'static str),
}
