//! The optional `pubsub` section: where the app publishes (docs/protocol.md §6).

use super::endpoint::Endpoint;
use super::error::Problems;
use super::reader::Obj;
use super::value;
use serde_json::Value;
use std::time::Duration;

/// Where and how often the app publishes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PubsubConfig {
    /// The endpoint a ZeroMQ PUB socket binds, validated, as written.
    pub endpoint: String,
    /// How often the engine publishes its `stats` (manifest: ms, default 1000).
    pub interval: Duration,
}

/// The default stats interval.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_millis(1000);

pub(crate) fn parse(v: &Value, path: &str, p: &mut Problems) -> Option<PubsubConfig> {
    let mut o = Obj::new(v, path, "an object", p)?;
    let endpoint = o.req("endpoint", p, |v, at, p| {
        let s = value::string(v, at, p)?;
        match Endpoint::parse(s) {
            Ok(_) => Some(s.to_owned()),
            Err(msg) => {
                p.add(at, msg);
                None
            }
        }
    });
    let interval = o.ms("interval", p).unwrap_or(DEFAULT_STATS_INTERVAL);
    o.finish(p);
    Some(PubsubConfig {
        endpoint: endpoint?,
        interval,
    })
}
