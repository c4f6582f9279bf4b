//! Error codes every protocol shares (the native protocol, zeromq-server and raw-server
//! replies, control replies) and the failure they travel in. One integer type, `u32`.

use std::fmt;

pub const BAD_REQUEST: u32 = 400;
pub const UNAUTHORIZED: u32 = 401;
pub const FORBIDDEN: u32 = 403;
pub const NOT_FOUND: u32 = 404;
pub const CONFLICT: u32 = 409;
pub const TOO_LARGE: u32 = 413;
pub const CANCELLED: u32 = 499;
pub const WORKER_FAILED: u32 = 500;
/// The node could not do what a control request asked (the store failed, an app could not
/// start); the same code as [`WORKER_FAILED`], named for the control plane.
pub const INTERNAL_ERROR: u32 = 500;
pub const APP_ERROR: u32 = 502;
pub const UNAVAILABLE: u32 = 503;
pub const TIMEOUT: u32 = 504;
pub const DEADLINE: u32 = 520;

/// A terminal error: a code from the table above and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub code: u32,
    pub message: String,
}

impl Failure {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for Failure {}
