//! Codecs for every wire the core speaks. Each decoder takes bytes and returns a `Result`;
//! no input can make one panic (see `fuzz/`).

pub mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod http_wire;
pub(crate) mod mp;
pub mod native;
pub mod native_session;
pub mod raw;
pub mod worker;

pub use error::DecodeError;
pub use frame::{write_frame, FrameDecoder};
