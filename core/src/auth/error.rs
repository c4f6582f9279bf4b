//! Why a key or a signed request was refused. Every refusal of a request maps to 401; the
//! reason goes back to the client and into the node's counters.

use thiserror::Error;

/// A public key that cannot go into the key store.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Not a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1) block, or
    /// not an RSA key.
    #[error("not an RSA public key in PEM: {0}")]
    Malformed(String),
    /// The modulus is outside the sizes we accept.
    #[error("an RSA key of {bits} bits; keys must have {min} to {max} bits")]
    Size { bits: usize, min: usize, max: usize },
    /// A user name that cannot be a key file name.
    #[error("bad user name {name:?}: {why}")]
    UserName { name: String, why: &'static str },
}

/// Why a signed request was refused: 401, or 403 for a verified user the task does not
/// allow ([`AuthError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// A signature is required and the request has none.
    #[error("this endpoint requires a signed request")]
    Unsigned,
    /// No key for this user in the key store (never added, or removed).
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// The nonce is not 16 to 64 printable ASCII characters.
    #[error("bad nonce: {0}")]
    BadNonce(&'static str),
    /// The timestamp is further in the past than the window allows.
    #[error("expired: signed {age_ms} ms ago, the window is {window_ms} ms")]
    Expired { age_ms: u64, window_ms: u64 },
    /// The timestamp is further in the future than the window allows.
    #[error("from the future: signed {ahead_ms} ms ahead of the node's clock, the window is {window_ms} ms")]
    FutureDated { ahead_ms: u64, window_ms: u64 },
    /// The signature does not match the bytes and the user's key.
    #[error("bad signature for user {0:?}")]
    BadSignature(String),
    /// This user already sent this nonce within the window.
    #[error("replayed: nonce already seen for user {0:?}")]
    Replayed(String),
    /// The user sent more signed requests within one window than the nonce cache holds.
    #[error("too many signed requests from {user:?}: {limit} within one window")]
    TooMany { user: String, limit: usize },
    /// A signed native open without `auth.app` or `auth.body`: it binds too little.
    #[error("a signed request must name its app and its body's SHA-256; `auth.{0}` is missing")]
    Incomplete(&'static str),
    /// A native request signed for another app (`auth.app`).
    #[error("signed for app {signed_for:?}, not this one ({here:?})")]
    WrongApp { signed_for: String, here: String },
    /// The body that came is not the one whose SHA-256 the open signed.
    #[error("the body does not match its signed digest")]
    BodyMismatch,
    /// A verified user the task's `security.users` does not list (403).
    #[error("user {0:?} may not call this task")]
    NotAllowed(String),
}

impl AuthError {
    /// A short stable name for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Unsigned => "unsigned",
            AuthError::UnknownUser(_) => "unknown_user",
            AuthError::BadNonce(_) => "bad_nonce",
            AuthError::Expired { .. } => "expired",
            AuthError::FutureDated { .. } => "future",
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::Replayed(_) => "replayed",
            AuthError::TooMany { .. } => "too_many",
            AuthError::Incomplete(_) => "incomplete",
            AuthError::WrongApp { .. } => "wrong_app",
            AuthError::BodyMismatch => "bad_body",
            AuthError::NotAllowed(_) => "not_allowed",
        }
    }

    /// The status code of the refusal: 403 for [`AuthError::NotAllowed`], 401 for the rest.
    pub fn code(&self) -> u32 {
        match self {
            AuthError::NotAllowed(_) => crate::status::FORBIDDEN,
            _ => crate::status::UNAUTHORIZED,
        }
    }
}
