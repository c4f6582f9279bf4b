//! Nodes working together: balancing requests between the nodes that run an app.

pub mod balance;
#[cfg(feature = "sim")]
pub mod simulation;
