//! The optional `cluster` section: how the app takes part in a cluster (docs/manifest.md).

use super::error::Problems;
use super::reader::Obj;
use serde_json::Value;

/// The app's cluster settings; both off by default, so an app stays on its node unless asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterConfig {
    /// Copy this app (manifest and package) to every peer; the newest `version` wins.
    pub replicate: bool,
    /// When the queue is full, hand a request once to the least-loaded peer that runs the app
    /// instead of answering 503.
    pub spillover: bool,
}

pub(crate) fn parse(v: &Value, path: &str, p: &mut Problems) -> Option<ClusterConfig> {
    let mut o = Obj::new(v, path, "an object", p)?;
    let c = ClusterConfig {
        replicate: o.bool("replicate", p).unwrap_or(false),
        spillover: o.bool("spillover", p).unwrap_or(false),
    };
    o.finish(p);
    Some(c)
}
