//! The reply to the control action `fetch`: an app's manifest and package, for a peer that
//! replicates it (docs/cluster.md, docs/control.md).
//!
//! ```text
//! ["", {"ok": {"app": str, "version": u64, "hash": hex64, "manifest": {...},
//!              "package": hex64 | null}}, package bytes (only when "package" is not null)]
//! ```
//!
//! `package` is the SHA-256 of the package frame and `hash` the app's content hash
//! ([`content_hash`]); the puller recomputes both, and compares `hash` with the one the
//! peer announced, before anything is stored.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::registry::{canonical_manifest, content_hash, package_digest, ContentHash};
use crate::control::check_app_name;
use crate::json;

/// A verified copy of an app from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub app: String,
    pub version: u64,
    pub hash: ContentHash,
    /// The manifest as canonical JSON.
    pub manifest_json: Bytes,
    pub package: Option<Bytes>,
}

/// Why a fetch reply is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the reply has no frames")]
    NoFrames,
    #[error("frame {index} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
    #[error("the reply is not JSON: {0}")]
    NotJson(String),
    #[error("the peer refused: {code} {message}")]
    Refused { code: u32, message: String },
    #[error("the reply is malformed: {0}")]
    Malformed(String),
    #[error("the reply has {got} frame(s) after the JSON, expected {expected}")]
    Frames { expected: usize, got: usize },
    #[error("the package's SHA-256 is {actual}, the reply says {claimed}")]
    PackageMismatch {
        claimed: ContentHash,
        actual: ContentHash,
    },
    #[error("the content hash is {actual}, the reply says {claimed}")]
    HashMismatch {
        claimed: ContentHash,
        actual: ContentHash,
    },
}

/// The frames (after the envelope) that answer `fetch` for an app: the JSON, then the
/// package if there is one.
pub fn encode_reply(
    app: &str,
    version: u64,
    manifest_json: &[u8],
    package: Option<&Bytes>,
) -> Option<Vec<Bytes>> {
    let manifest: Value = serde_json::from_slice(manifest_json).ok()?;
    let digest = package.map(|p| package_digest(p));
    let hash = content_hash(manifest_json, digest.as_ref())?;
    let body = json!({"ok": {
        "app": app,
        "version": version,
        "hash": hash.to_hex(),
        "manifest": manifest,
        "package": digest.map(|d| d.to_hex()),
    }});
    let mut frames = vec![Bytes::from(body.to_string())];
    frames.extend(package.cloned());
    Some(frames)
}

/// Reads and verifies a `fetch` reply (the frames after the envelope). Never panics.
pub fn decode_reply(frames: &[Bytes], max_message: usize) -> Result<Fetched, FetchError> {
    if let Some((index, frame)) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| f.len() > max_message)
    {
        return Err(FetchError::TooLarge {
            index,
            size: frame.len(),
            limit: max_message,
        });
    }
    let (first, rest) = frames.split_first().ok_or(FetchError::NoFrames)?;
    let value =
        json::parse(first).map_err(|e| FetchError::NotJson(e.position_error().to_string()))?;
    let ok = ok_object(value)?;
    let fields = Fields(&ok);
    fields.only(&["app", "version", "hash", "manifest", "package"])?;
    let app = fields.str("app")?.to_owned();
    check_app_name(&app).map_err(FetchError::Malformed)?;
    let version = fields.u64("version")?;
    let claimed = fields.hash("hash")?;
    let manifest = match ok.get("manifest") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => return Err(malformed("`manifest` must be an object")),
    };
    let digest = match ok.get("package") {
        Some(Value::Null) => None,
        Some(_) => Some(fields.hash("package")?),
        None => return Err(malformed("`package` is missing")),
    };
    let expected = usize::from(digest.is_some());
    if rest.len() != expected {
        return Err(FetchError::Frames {
            expected,
            got: rest.len(),
        });
    }
    let package = rest.first().cloned();
    if let (Some(claimed), Some(bytes)) = (digest, &package) {
        let actual = package_digest(bytes);
        if actual != claimed {
            return Err(FetchError::PackageMismatch { claimed, actual });
        }
    }
    let manifest_text = manifest.to_string();
    let canonical = canonical_manifest(manifest_text.as_bytes()).unwrap_or(manifest_text);
    let actual = content_hash(canonical.as_bytes(), digest.as_ref())
        .ok_or_else(|| malformed("the manifest cannot be hashed"))?;
    if actual != claimed {
        return Err(FetchError::HashMismatch { claimed, actual });
    }
    Ok(Fetched {
        app,
        version,
        hash: actual,
        manifest_json: Bytes::from(canonical),
        package,
    })
}

/// The `ok` object of a reply, or the error the peer answered with.
fn ok_object(value: Value) -> Result<Map<String, Value>, FetchError> {
    let Value::Object(mut top) = value else {
        return Err(malformed("not an object"));
    };
    if let Some(Value::Object(ok)) = top.remove("ok") {
        return Ok(ok);
    }
    let error = top.get("error").and_then(Value::as_object);
    match error {
        Some(e) => Err(FetchError::Refused {
            code: e
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0),
            message: shorten(e.get("message").and_then(Value::as_str).unwrap_or("")),
        }),
        None => Err(malformed("neither an `ok` object nor an `error`")),
    }
}

fn malformed(what: &str) -> FetchError {
    FetchError::Malformed(what.to_owned())
}

/// A peer's text, cut so a hostile one cannot flood the log.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn only(&self, keys: &[&str]) -> Result<(), FetchError> {
        match self.0.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(key) => Err(FetchError::Malformed(format!(
                "unknown key {:?}",
                shorten(key)
            ))),
            None => Ok(()),
        }
    }

    fn str(&self, key: &str) -> Result<&str, FetchError> {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Malformed(format!("`{key}` must be a string")))
    }

    fn u64(&self, key: &str) -> Result<u64, FetchError> {
        self.0
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| FetchError::Malformed(format!("`{key}` must be a non-negative integer")))
    }

    fn hash(&self, key: &str) -> Result<ContentHash, FetchError> {
        ContentHash::from_hex(self.str(key)?)
            .ok_or_else(|| FetchError::Malformed(format!("`{key}` must be 64 hex digits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &[u8] = br#"{"version": 3, "type": "binary", "args": "w"}"#;

    fn reply(package: Option<&[u8]>) -> Vec<Bytes> {
        let package = package.map(Bytes::copy_from_slice);
        encode_reply("echo", 3, MANIFEST, package.as_ref()).unwrap()
    }

    #[test]
    fn a_reply_round_trips_with_and_without_a_package() {
        for package in [None, Some(&b"tar bytes"[..])] {
            let frames = reply(package);
            let fetched = decode_reply(&frames, 1 << 20).unwrap();
            assert_eq!(fetched.app, "echo");
            assert_eq!(fetched.version, 3);
            assert_eq!(fetched.package.as_deref(), package);
            let digest = package.map(package_digest);
            assert_eq!(
                Some(fetched.hash),
                content_hash(MANIFEST, digest.as_ref()),
                "the hash is the manifest's and the package's"
            );
        }
    }

    #[test]
    fn tampering_is_caught() {
        let mut frames = reply(Some(b"tar bytes"));
        frames[1] = Bytes::from_static(b"evil bytes");
        assert!(matches!(
            decode_reply(&frames, 1 << 20),
            Err(FetchError::PackageMismatch { .. })
        ));
        let mut frames = reply(None);
        let text = String::from_utf8(frames[0].to_vec()).unwrap();
        frames[0] = Bytes::from(text.replace("\"args\":\"w\"", "\"args\":\"x\""));
        assert!(matches!(
            decode_reply(&frames, 1 << 20),
            Err(FetchError::HashMismatch { .. })
        ));
    }

    #[test]
    fn malformed_replies_are_errors() {
        let ok = reply(Some(b"p"));
        let cases: Vec<(Vec<Bytes>, &str)> = vec![
            (vec![], "no frames"),
            (vec![Bytes::from_static(b"{")], "not JSON"),
            (vec![Bytes::from_static(b"[1]")], "malformed"),
            (vec![Bytes::from_static(br#"{"ok": 1}"#)], "malformed"),
            (
                vec![Bytes::from_static(
                    br#"{"error": {"code": 404, "message": "no app named \"x\""}}"#,
                )],
                "refused: 404",
            ),
            (vec![ok[0].clone()], "frame(s) after the JSON"),
            (
                vec![ok[0].clone(), ok[1].clone(), ok[1].clone()],
                "frame(s) after the JSON",
            ),
            (
                vec![ok[0].clone(), Bytes::from(vec![0; 64 + ok[0].len()])],
                "over the limit",
            ),
        ];
        for (frames, want) in cases {
            let error = decode_reply(&frames, 32 + ok[0].len())
                .unwrap_err()
                .to_string();
            assert!(error.contains(want), "{error:?} lacks {want:?}");
        }
        let text = String::from_utf8(ok[0].to_vec()).unwrap();
        for (from, to, want) in [
            ("\"app\":\"echo\"", "\"app\":\"../x\"", "app name"),
            ("\"version\":3", "\"version\":-3", "version"),
            ("\"version\":3", "\"version\":3,\"extra\":1", "unknown key"),
            ("\"hash\":\"", "\"hash\":\"zz", "hash"),
            (
                "\"app\":\"echo\"",
                "\"app\":\"echo\",\"app\":\"echo\"",
                "not JSON",
            ),
        ] {
            // The last match: the reply's own key, after the manifest's keys.
            let at = text.rfind(from).unwrap();
            let edited = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
            let frames = vec![Bytes::from(edited), ok[1].clone()];
            let error = decode_reply(&frames, 1 << 20).unwrap_err().to_string();
            assert!(error.contains(want), "{error:?} lacks {want:?}");
        }
    }
}
