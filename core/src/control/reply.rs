//! Control replies: `{"ok": ...}` or `{"error": {"code": ..., "message": ...}}`.

use bytes::Bytes;
use serde_json::{json, Value};

use super::ControlError;

/// One reply to a control request, as the JSON frame that follows the routing frames and the
/// empty delimiter. (`fetch` also sends the package as a frame after it; that frame is the
/// caller's to add.)
#[derive(Debug, Clone, PartialEq)]
pub enum ControlReply {
    /// Success, with the action's result.
    Ok(Value),
    /// Failure, with a code (400, 401, 404, 409, 413, 500) and a message for a human.
    Error {
        /// The code, HTTP-like.
        code: u32,
        /// What went wrong.
        message: String,
    },
}

impl ControlReply {
    /// A success reply.
    pub fn ok(value: Value) -> ControlReply {
        ControlReply::Ok(value)
    }

    /// An error reply.
    pub fn error(code: u32, message: impl Into<String>) -> ControlReply {
        ControlReply::Error {
            code,
            message: message.into(),
        }
    }

    /// The reply as compact JSON: `{"ok":...}` or `{"error":{"code":..,"message":..}}`.
    pub fn encode(&self) -> Bytes {
        let value = match self {
            ControlReply::Ok(value) => json!({ "ok": value }),
            ControlReply::Error { code, message } => {
                json!({ "error": { "code": code, "message": message } })
            }
        };
        Bytes::from(value.to_string())
    }
}

impl From<&ControlError> for ControlReply {
    fn from(error: &ControlError) -> ControlReply {
        ControlReply::error(error.code(), error.message())
    }
}

impl From<ControlError> for ControlReply {
    fn from(error: ControlError) -> ControlReply {
        ControlReply::from(&error)
    }
}
