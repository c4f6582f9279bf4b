//! A tombstone as the store keeps it: `{"app": str, "version": u64, "deleted_at": unix ms}`,
//! written by the node when a replicated app is deleted (here or by a peer) and read back at
//! start, so a restarted node never fetches the deleted version again.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::control::check_app_name;
use crate::json;

/// The largest tombstone file accepted: a few dozen bytes in practice.
pub const MAX_TOMBSTONE: usize = 4096;

/// A replicated app's deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub version: u64,
    pub at_unix_ms: u64,
}

/// Why stored bytes are not a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TombstoneError {
    #[error("{size} bytes, over the limit of {MAX_TOMBSTONE}")]
    TooLarge { size: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Malformed(String),
    #[error("it is the tombstone of {found:?}, stored as {expected:?}")]
    OtherApp { expected: String, found: String },
}

pub fn encode(app: &str, tombstone: Tombstone) -> Bytes {
    Bytes::from(
        json!({"app": app, "version": tombstone.version, "deleted_at": tombstone.at_unix_ms})
            .to_string(),
    )
}

/// Reads the tombstone of `app` from its stored bytes. Never panics.
pub fn decode(app: &str, bytes: &[u8]) -> Result<Tombstone, TombstoneError> {
    if bytes.len() > MAX_TOMBSTONE {
        return Err(TombstoneError::TooLarge { size: bytes.len() });
    }
    let value =
        json::parse(bytes).map_err(|e| TombstoneError::NotJson(e.position_error().to_string()))?;
    let Value::Object(object) = value else {
        return Err(malformed("not an object"));
    };
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "app" | "version" | "deleted_at"))
    {
        return Err(TombstoneError::Malformed(format!("unknown key {key:?}")));
    }
    let found = object
        .get("app")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("`app` must be a string"))?;
    check_app_name(found).map_err(TombstoneError::Malformed)?;
    if found != app {
        return Err(TombstoneError::OtherApp {
            expected: app.to_owned(),
            found: found.to_owned(),
        });
    }
    let number = |key: &str| {
        object.get(key).and_then(Value::as_u64).ok_or_else(|| {
            TombstoneError::Malformed(format!("`{key}` must be a non-negative integer"))
        })
    };
    Ok(Tombstone {
        version: number("version")?,
        at_unix_ms: number("deleted_at")?,
    })
}

fn malformed(what: &str) -> TombstoneError {
    TombstoneError::Malformed(what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let t = Tombstone {
            version: 4,
            at_unix_ms: 1_700_000_000_000,
        };
        assert_eq!(decode("echo", &encode("echo", t)), Ok(t));
        let cases: [(&[u8], &str); 8] = [
            (b"", "not JSON"),
            (b"[]", "not an object"),
            (br#"{"app":"echo","version":1}"#, "deleted_at"),
            (br#"{"app":"echo","version":-1,"deleted_at":1}"#, "version"),
            (br#"{"app":"web","version":1,"deleted_at":1}"#, "stored as"),
            (br#"{"app":"..","version":1,"deleted_at":1}"#, "app name"),
            (
                br#"{"app":"echo","version":1,"deleted_at":1,"x":0}"#,
                "unknown key",
            ),
            (
                br#"{"app":"echo","app":"echo","version":1,"deleted_at":1}"#,
                "not JSON",
            ),
        ];
        for (bytes, want) in cases {
            let error = decode("echo", bytes).unwrap_err().to_string();
            assert!(error.contains(want), "{error:?} lacks {want:?}");
        }
        let big = vec![b' '; MAX_TOMBSTONE + 1];
        assert!(matches!(
            decode("echo", &big),
            Err(TombstoneError::TooLarge { .. })
        ));
    }
}
