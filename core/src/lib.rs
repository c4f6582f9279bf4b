//! The sans-IO core of Cocaine (placeholder docs; the run loop is described once the node lands).

pub mod codec;
pub mod engine;
pub mod ids;
pub mod manifest;
pub mod stats;
pub mod time;

pub use ids::{AppId, EndpointId, WorkerId};
pub use time::Now;
pub mod arena;
pub mod node;
pub mod process;
pub mod sim;
pub mod status;
pub mod timers;
