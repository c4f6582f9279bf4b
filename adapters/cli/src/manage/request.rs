//! The JSON frame of each control request (docs/control.md), built from the command line.

use base64::Engine as _;
use cocaine_core::control::When;
use serde_json::{Map, Value};

/// The protocol version this CLI speaks.
const VERSION: u64 = 1;

fn request<const N: usize>(action: &str, args: [(&str, Value); N]) -> Vec<u8> {
    let mut object: Map<String, Value> = args.into_iter().map(|(k, v)| (k.into(), v)).collect();
    object.insert("version".into(), VERSION.into());
    object.insert("action".into(), action.into());
    Value::Object(object).to_string().into_bytes()
}

/// Why a manifest file cannot be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum ManifestError {
    NotJson(String),
    NotAnObject(&'static str),
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestError::NotJson(why) => write!(f, "not JSON: {why}"),
            ManifestError::NotAnObject(found) => {
                write!(f, "a manifest is a JSON object, found {found}")
            }
        }
    }
}

/// `deploy`: the manifest goes in as written, byte for byte, not parsed and printed again:
/// a key written twice stays twice, so the node's strict reader reports it rather than this
/// end silently keeping the last one.
pub fn deploy(app: &str, manifest: &[u8]) -> Result<Vec<u8>, ManifestError> {
    let text = std::str::from_utf8(manifest)
        .map_err(|e| ManifestError::NotJson(format!("not UTF-8: {e}")))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| ManifestError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ManifestError::NotAnObject(kind(&value)));
    }
    let head = request("deploy", [("app", app.into())]);
    // `head` ends with the object's closing brace: put the manifest before it.
    let mut out = head[..head.len() - 1].to_vec();
    out.extend_from_slice(b",\"manifest\":");
    out.extend_from_slice(text.trim().as_bytes());
    out.push(b'}');
    Ok(out)
}

pub fn delete(app: &str) -> Vec<u8> {
    request("delete", [("app", app.into())])
}

pub fn reload(app: &str) -> Vec<u8> {
    request("reload", [("app", app.into())])
}

pub fn list() -> Vec<u8> {
    request("list", [])
}

pub fn keys() -> Vec<u8> {
    request("keys", [])
}

pub fn pubkey() -> Vec<u8> {
    request("pubkey", [])
}

pub fn info(app: Option<&str>) -> Vec<u8> {
    match app {
        Some(app) => request("info", [("app", app.into())]),
        None => request("info", []),
    }
}

/// `schedule`; the body travels in base64, and is left out when empty.
pub fn schedule(app: &str, task: &str, when: When, body: &[u8]) -> Vec<u8> {
    let when = match when {
        When::At(ms) => ("at", ms.into()),
        When::After(ms) => ("after", ms.into()),
    };
    let app = ("app", app.into());
    let task = ("task", task.into());
    if body.is_empty() {
        request("schedule", [app, task, when])
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(body);
        request("schedule", [app, task, when, ("body", encoded.into())])
    }
}

pub fn unschedule(id: &str) -> Vec<u8> {
    request("unschedule", [("id", id.into())])
}

pub fn status() -> Vec<u8> {
    request("status", [])
}

pub fn stop(app: &str) -> Vec<u8> {
    request("stop", [("app", app.into())])
}

pub fn start(app: &str) -> Vec<u8> {
    request("start", [("app", app.into())])
}

/// `scale`: only the bounds given travel.
pub fn scale(app: &str, pool_min: Option<u64>, pool_limit: Option<u64>) -> Vec<u8> {
    let mut object: Map<String, Value> = Map::new();
    object.insert("app".into(), app.into());
    if let Some(min) = pool_min {
        object.insert("pool-min".into(), min.into());
    }
    if let Some(limit) = pool_limit {
        object.insert("pool-limit".into(), limit.into());
    }
    object.insert("version".into(), VERSION.into());
    object.insert("action".into(), "scale".into());
    Value::Object(object).to_string().into_bytes()
}

pub fn quit() -> Vec<u8> {
    request("quit", [])
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cocaine_core::control::{Action, ControlRequest};

    /// Decodes with the node's own decoder: what the node would act on.
    fn decode(json: Vec<u8>, frames: &[&[u8]]) -> Action {
        let mut all = vec![Bytes::from(json)];
        all.extend(frames.iter().map(|f| Bytes::copy_from_slice(f)));
        ControlRequest::decode(&all, 1 << 20)
            .map_err(|e| e.message())
            .unwrap()
            .action
    }

    #[test]
    fn every_request_decodes_as_meant() {
        let manifest = br#" {"type": "binary", "args": "local://run", "tasks": {}}
"#;
        let Action::Deploy {
            app,
            manifest,
            package,
        } = decode(deploy("echo", manifest).unwrap(), &[b"tar bytes"])
        else {
            panic!("not a deploy");
        };
        assert_eq!(app, "echo");
        assert_eq!(manifest["args"], "local://run");
        assert_eq!(package.as_deref(), Some(&b"tar bytes"[..]));

        assert_eq!(
            decode(delete("echo"), &[]),
            Action::Delete { app: "echo".into() }
        );
        assert_eq!(
            decode(reload("echo"), &[]),
            Action::Reload { app: "echo".into() }
        );
        assert_eq!(decode(list(), &[]), Action::List);
        assert_eq!(decode(info(None), &[]), Action::Info { app: None });
        assert_eq!(
            decode(info(Some("echo")), &[]),
            Action::Info {
                app: Some("echo".into())
            }
        );
        assert_eq!(
            decode(schedule("echo", "later", When::After(1500), b"\0body"), &[]),
            Action::Schedule {
                app: "echo".into(),
                task: "later".into(),
                when: When::After(1500),
                body: Some(Bytes::from_static(b"\0body")),
            }
        );
        assert_eq!(
            decode(
                schedule("echo", "later", When::At(1_795_629_600_000), b""),
                &[]
            ),
            Action::Schedule {
                app: "echo".into(),
                task: "later".into(),
                when: When::At(1_795_629_600_000),
                body: None,
            }
        );
        assert_eq!(
            decode(unschedule("job-1"), &[]),
            Action::Unschedule { id: "job-1".into() }
        );
        assert_eq!(decode(status(), &[]), Action::Status);
        assert_eq!(decode(stop("a"), &[]), Action::Stop { app: "a".into() });
        assert_eq!(decode(start("a"), &[]), Action::Start { app: "a".into() });
        assert_eq!(
            decode(scale("a", None, Some(3)), &[]),
            Action::Scale {
                app: "a".into(),
                pool_min: None,
                pool_limit: Some(3)
            }
        );
        assert_eq!(decode(quit(), &[]), Action::Quit);
    }

    #[test]
    fn the_wire_form_is_plain() {
        assert_eq!(
            String::from_utf8(schedule("a", "t", When::After(5), b"hi")).unwrap(),
            r#"{"action":"schedule","after":5,"app":"a","body":"aGk=","task":"t","version":1}"#
        );
        assert_eq!(
            String::from_utf8(deploy("a", b"{ }").unwrap()).unwrap(),
            r#"{"action":"deploy","app":"a","version":1,"manifest":{ }}"#
        );
    }

    #[test]
    fn a_duplicate_key_in_the_manifest_reaches_the_node() {
        let json = deploy("a", br#"{"type": "python", "type": "binary"}"#).unwrap();
        let err = ControlRequest::decode(&[Bytes::from(json)], 1 << 20).unwrap_err();
        assert!(
            err.message().contains("duplicate key \"type\""),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_manifest_must_be_a_json_object() {
        assert_eq!(
            deploy("a", b"[1, 2]"),
            Err(ManifestError::NotAnObject("an array"))
        );
        let Err(ManifestError::NotJson(why)) = deploy("a", b"{\"type\": ") else {
            panic!("accepted");
        };
        assert!(why.contains("EOF"), "{why}");
        assert!(matches!(
            deploy("a", b"{\"a\": \"\xff\"}"),
            Err(ManifestError::NotJson(_))
        ));
        assert!(matches!(deploy("a", b""), Err(ManifestError::NotJson(_))));
    }
}
