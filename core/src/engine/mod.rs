//! The per-app engine.
pub mod config;
pub use config::{Backend, BusynessConfig, EngineConfig, PoolPolicyConfig};
