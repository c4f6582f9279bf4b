//! The cluster: nodes that find each other, copy each other's apps and share load
//! (docs/cluster.md).

pub mod fetch;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod registry;
pub mod tombstone;
