//! The cluster: nodes that find each other, copy each other's apps and share load
//! (docs/cluster.md).

pub mod fetch;
pub mod registry;
#[cfg(feature = "fuzzing")]
pub mod replication_fuzzing;
pub mod tombstone;
