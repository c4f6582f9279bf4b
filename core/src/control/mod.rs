//! The control protocol (docs/protocol.md §7): decoding requests and encoding replies.
//!
//! A control request arrives on the node's ZeroMQ ROUTER as
//! `[routing..., "", json, optional binary frames...]`. The runtime strips the routing frames
//! and the empty delimiter and hands the rest to [`ControlRequest::decode`], which checks
//! everything that can be checked without state: the version, the action and its arguments,
//! the app name, the frames that go with the action, and the fields of a signed request. It
//! does not verify signatures, look apps up or touch a store; the node does that with the
//! decoded request. Every failure is a [`ControlError`] with a code (400 or 413) and a message
//! that names the key at fault, and turns into a [`ControlReply`] for the client.
//!
//! ```
//! use bytes::Bytes;
//! use cocaine_core::control::{Action, ControlReply, ControlRequest};
//!
//! let frames = [Bytes::from_static(br#"{"version": 1, "action": "delete", "app": "echo"}"#)];
//! let request = ControlRequest::decode(&frames, 1 << 20).unwrap();
//! assert_eq!(request.action, Action::Delete { app: "echo".into() });
//!
//! let frames = [Bytes::from_static(br#"{"version": 1, "action": "delte", "app": "echo"}"#)];
//! let error = ControlRequest::decode(&frames, 1 << 20).unwrap_err();
//! assert_eq!(error.code(), 400);
//! assert_eq!(
//!     ControlReply::from(&error).encode(),
//!     Bytes::from_static(
//!         br#"{"error":{"code":400,"message":"unknown action \"delte\"; did you mean \"delete\"?"}}"#
//!     )
//! );
//! ```

mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod reply;
mod request;

pub use error::ControlError;
pub use reply::ControlReply;
pub use request::{check_app_name, Action, ControlRequest, Signed, When, ACTIONS, MAX_APP_NAME};

/// The only control protocol version there is.
pub const VERSION: u64 = 1;
