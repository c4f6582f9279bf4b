//! Why a request in a session, or a session-open, was refused, and the counters (control
//! `keys`, `"sessions"`). Kept apart from [`crate::auth::AuthError`]: a session's refusals
//! have their own reasons, and a session-open's signature is counted there as any signature.

use thiserror::Error;

use crate::status;

/// A refused request in a session (401, 403 or 503, [`SessionError::code`]) or session-open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    /// No such session: never opened, expired and forgotten, dropped with its user's key, or
    /// the node restarted. The client opens a new one.
    #[error("unknown session")]
    Unknown,
    /// The session outlived its lifetime or its idle limit.
    #[error("session expired")]
    Expired,
    /// The MAC does not match: the wrong session key, or a changed request.
    #[error("bad session MAC: the wrong session key, or the request was changed")]
    BadMac,
    /// This sequence number was already used in the session.
    #[error("replayed: seq {0} already seen in this session")]
    Replayed(u64),
    /// The sequence number is 0, or too far behind the newest to tell.
    #[error("bad seq {seq}: {why}")]
    BadSeq { seq: u64, why: String },
    /// A request made for another app.
    #[error("made for app {made_for:?}, not this one ({here:?})")]
    WrongApp { made_for: String, here: String },
    /// The body is not the one whose SHA-256 the open carried.
    #[error("the body does not match its digest")]
    BodyMismatch,
    /// The session's user may not call this task (403).
    #[error("user {0:?} may not call this task")]
    NotAllowed(String),
    /// A session-open must be signed with the user's key (a session cannot open another).
    #[error("a session-open must be signed (RSA-PSS) by the user's key")]
    Unsigned,
    /// The task does not check signatures, so it cannot vouch for a session's user (403).
    #[error("sessions need a task that checks signatures (its security.auth is off)")]
    TaskOff,
    /// A session-open carries no body.
    #[error("a session-open has no body")]
    BodyNotEmpty,
    /// A sealed request in a session, or a sealed session-open (400): a sealed body is bound
    /// to the signature's nonce and its reply to the signer's key, which a session's MAC and
    /// seq do not give; sealed requests are signed per request.
    #[error("a sealed request cannot be made in a session (nor open one): sign it per request")]
    Sealed,
    /// The node has as many sessions as it keeps (503; they expire, try later).
    #[error("too many sessions on this node (limit {0}); try again later")]
    TooMany(usize),
    /// The node was given no seed, so it cannot make keys (503).
    #[error("this node cannot make session keys (no random seed)")]
    NoSeed,
    /// The user's key could not wrap the session key (500).
    #[error("wrapping the session key failed: {0}")]
    Wrap(String),
}

impl SessionError {
    /// A short stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            SessionError::Unknown => "unknown_session",
            SessionError::Expired => "expired",
            SessionError::BadMac => "bad_mac",
            SessionError::Replayed(_) | SessionError::BadSeq { .. } => "replayed",
            SessionError::WrongApp { .. } => "wrong_app",
            SessionError::BodyMismatch => "bad_body",
            SessionError::NotAllowed(_) => "not_allowed",
            SessionError::Unsigned
            | SessionError::TaskOff
            | SessionError::BodyNotEmpty
            | SessionError::Sealed => "bad_open",
            SessionError::TooMany(_) => "too_many",
            SessionError::NoSeed | SessionError::Wrap(_) => "failed",
        }
    }

    /// The status code of the refusal.
    pub fn code(&self) -> u32 {
        match self {
            SessionError::NotAllowed(_) | SessionError::TaskOff => status::FORBIDDEN,
            SessionError::BodyNotEmpty | SessionError::Sealed => status::BAD_REQUEST,
            SessionError::TooMany(_) | SessionError::NoSeed => status::UNAVAILABLE,
            SessionError::Wrap(_) => status::INTERNAL_ERROR,
            _ => status::UNAUTHORIZED,
        }
    }
}

/// Sessions opened and requests in sessions accepted and refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionStats {
    /// Sessions opened.
    pub opened: u64,
    /// Requests in a session accepted.
    pub accepted: u64,
    pub unknown_session: u64,
    pub expired: u64,
    pub bad_mac: u64,
    pub replayed: u64,
    pub wrong_app: u64,
    pub bad_body: u64,
    pub not_allowed: u64,
    /// Session-opens refused for their form (unsigned, on an `off` task, with a body).
    pub bad_open: u64,
    pub too_many: u64,
    pub failed: u64,
    /// Sessions a user's newer one pushed out (the per-user bound).
    pub evicted: u64,
    /// Sessions dropped because their user's key was removed or replaced.
    pub dropped: u64,
}

impl SessionStats {
    /// Counts one refusal under its reason.
    pub fn count(&mut self, error: &SessionError) {
        let counter = match error.reason() {
            "unknown_session" => &mut self.unknown_session,
            "expired" => &mut self.expired,
            "bad_mac" => &mut self.bad_mac,
            "replayed" => &mut self.replayed,
            "wrong_app" => &mut self.wrong_app,
            "bad_body" => &mut self.bad_body,
            "not_allowed" => &mut self.not_allowed,
            "bad_open" => &mut self.bad_open,
            "too_many" => &mut self.too_many,
            _ => &mut self.failed,
        };
        *counter += 1;
    }

    /// Every refusal, whatever the reason.
    pub fn refused(&self) -> u64 {
        self.unknown_session
            + self.expired
            + self.bad_mac
            + self.replayed
            + self.wrong_app
            + self.bad_body
            + self.not_allowed
            + self.bad_open
            + self.too_many
            + self.failed
    }
}
