//! Jobs of the manual scheduler, persisted so they survive a node restart.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One scheduled call: `task` of `app` with `body`, due at `at_unix_ms`. Stored as
/// `schedule/<id>.json`, the body in standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledJob {
    /// Unique among jobs; a file name, so it follows the rules of app names.
    pub id: String,
    pub app: String,
    pub task: String,
    /// When it is due, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub body: Vec<u8>,
}

fn to_base64<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(body))
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(serde::de::Error::custom)
}
