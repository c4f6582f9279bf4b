//! Replies as [`Client::recv`](crate::Client::recv) hands them out.

use std::fmt;

/// A request's id on one connection, chosen by the client. Sid 0 is the connection itself:
/// the node sends `[6, 0, 400, reason]` there for a frame it could not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(pub u64);

impl Sid {
    /// The connection-level sid.
    pub const CONNECTION: Sid = Sid(0);

    /// The number on the wire.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One reply message for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request it answers.
    pub sid: Sid,
    /// What it says.
    pub kind: ReplyKind,
}

/// The three things a node says about a request (docs/protocol.md §2): zero or more chunks, then
/// exactly one end or error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    /// A reply chunk (`[4]`).
    Chunk(Vec<u8>),
    /// The reply is complete (`[5]`).
    End,
    /// The request failed (`[6]`).
    Error {
        /// The code, e.g. 499 after a cancel.
        code: u32,
        /// The node's or the app's text.
        message: String,
    },
}

impl Reply {
    /// Whether this is the request's last message.
    pub fn is_terminal(&self) -> bool {
        !matches!(self.kind, ReplyKind::Chunk(_))
    }
}
