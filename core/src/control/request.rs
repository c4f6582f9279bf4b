//! Decoding a control request: `[json, optional binary frames...]`.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::error::shorten;
use super::{ControlError, VERSION};
use crate::json::{self, JsonError};
use crate::suggest::hint;

/// Every action, in the order of docs/protocol.md §7.
pub const ACTIONS: [&str; 17] = [
    "deploy",
    "delete",
    "reload",
    "list",
    "info",
    "schedule",
    "unschedule",
    "peers",
    "fetch",
    "keys",
    "status",
    "stop",
    "start",
    "scale",
    "quit",
    "resolve",
    "pubkey",
];

/// Longest app name accepted.
pub const MAX_APP_NAME: usize = 64;

/// Keys every request may carry, whatever its action.
const COMMON_KEYS: [&str; 5] = ["version", "action", "user", "ts", "nonce"];

/// A decoded control request.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRequest {
    /// What to do.
    pub action: Action,
    /// The signature fields, when the request is signed. Not verified here.
    pub signed: Option<Signed>,
}

/// A control action and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store a manifest (and package) and start the app.
    Deploy {
        /// The app name (valid: see [`check_app_name`]).
        app: String,
        /// The manifest, a JSON object with no duplicate keys, for
        /// [`Manifest::parse`](crate::manifest::Manifest::parse) (serialize it back to bytes).
        manifest: Map<String, Value>,
        /// The package (a tar archive), the binary frame after the JSON, if sent.
        package: Option<Bytes>,
    },
    /// Stop the app and remove it from the store.
    Delete {
        /// The app.
        app: String,
    },
    /// Restart the app's workers from its stored manifest.
    Reload {
        /// The app.
        app: String,
    },
    /// List the apps.
    List,
    /// Describe one app, or the node when `app` is `None`.
    Info {
        /// The app, if any.
        app: Option<String>,
    },
    /// Submit a one-shot job to a `manual-scheduler` task.
    Schedule {
        /// The app.
        app: String,
        /// The task (a `manual-scheduler`), non-empty.
        task: String,
        /// When to run it.
        when: When,
        /// The job's body, decoded from base64 (empty when absent).
        body: Option<Bytes>,
    },
    /// Cancel a scheduled job.
    Unschedule {
        /// The id `schedule` returned, non-empty.
        id: String,
    },
    /// List the cluster peers.
    Peers,
    /// Send back an app's manifest and package (replication).
    Fetch {
        /// The app.
        app: String,
    },
    /// List the key store.
    Keys,
    /// The node and every app at a glance: state, workers, queue, counts.
    Status,
    /// Stop an app's workers and endpoints but keep it (stored as stopped).
    Stop {
        /// The app.
        app: String,
    },
    /// Start a stopped app again.
    Start {
        /// The app.
        app: String,
    },
    /// Change an app's pool bounds while it runs; at least one is given.
    Scale {
        /// The app.
        app: String,
        /// The new `pool-min`, if given.
        pool_min: Option<u64>,
        /// The new `pool-limit`, if given.
        pool_limit: Option<u64>,
    },
    /// Stop the node gracefully, as SIGTERM does; answered before it stops.
    Quit,
    /// The nodes that run an app, their endpoints and load (balancing clients).
    Resolve {
        /// The app.
        app: String,
    },
    /// The node's own public key.
    Pubkey,
}

impl Action {
    /// The action's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Deploy { .. } => "deploy",
            Action::Delete { .. } => "delete",
            Action::Reload { .. } => "reload",
            Action::List => "list",
            Action::Info { .. } => "info",
            Action::Schedule { .. } => "schedule",
            Action::Unschedule { .. } => "unschedule",
            Action::Peers => "peers",
            Action::Fetch { .. } => "fetch",
            Action::Keys => "keys",
            Action::Status => "status",
            Action::Stop { .. } => "stop",
            Action::Start { .. } => "start",
            Action::Scale { .. } => "scale",
            Action::Quit => "quit",
            Action::Resolve { .. } => "resolve",
            Action::Pubkey => "pubkey",
        }
    }
}

/// When a scheduled job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At this wall-clock time, unix milliseconds.
    At(u64),
    /// This many milliseconds after the node receives the request.
    After(u64),
}

/// The signature fields of a signed request (docs/protocol.md §10), to be verified by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Whose key signed it.
    pub user: String,
    /// When it was signed, unix milliseconds.
    pub ts: u64,
    /// A value the user never repeats within the replay window.
    pub nonce: String,
    /// The last frame of the request.
    pub signature: Bytes,
    /// The exact JSON frame, the bytes the signature covers.
    pub signed_bytes: Bytes,
}

/// Checks an app name: 1 to [`MAX_APP_NAME`] characters from `A-Z a-z 0-9 . _ -`, and not `.`
/// or `..` (names become store paths). The error says why, for a human.
pub fn check_app_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("app name is empty".into());
    }
    if name.len() > MAX_APP_NAME {
        return Err(format!(
            "app name is {} bytes, over the limit of {MAX_APP_NAME}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "app name {:?} has the character {c:?}; use A-Z, a-z, 0-9, '.', '_' and '-'",
            name
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not an app name"));
    }
    Ok(())
}

impl ControlRequest {
    /// Decodes a request from the frames after the routing frames and the empty delimiter:
    /// the JSON frame, the action's binary frames (a `deploy` package), and the signature
    /// frame last when the JSON has `user`, `ts` and `nonce`.
    ///
    /// Checks, in order: no frame over `max_message` bytes (413), then JSON, an object, no
    /// duplicate keys, `version` 1, a known `action`, no unknown key, the types and values of
    /// the arguments, the signature fields, and the number of frames (400 for all of those).
    /// Never panics.
    pub fn decode(frames: &[Bytes], max_message: usize) -> Result<ControlRequest, ControlError> {
        if let Some((index, frame)) = frames
            .iter()
            .enumerate()
            .find(|(_, f)| f.len() > max_message)
        {
            return Err(ControlError::TooLarge {
                index,
                size: frame.len(),
                limit: max_message,
            });
        }
        let Some((json_frame, rest)) = frames.split_first() else {
            return Err(ControlError::NoFrames);
        };
        let object = match json::parse(json_frame) {
            Ok(Value::Object(object)) => object,
            Ok(other) => return Err(ControlError::NotAnObject(kind(&other))),
            Err(JsonError::Syntax(error)) => return Err(ControlError::NotJson(error.to_string())),
            Err(JsonError::Duplicate { key, .. }) => {
                return Err(ControlError::DuplicateKey(shorten(&key)))
            }
        };
        let args = Args(&object);

        match object.get("version") {
            None => return Err(ControlError::MissingKey("version")),
            Some(v) if as_integer(v) == Some(VERSION) => {}
            Some(v) => return Err(ControlError::UnsupportedVersion(shorten(&v.to_string()))),
        }
        let action_name = args.required_str("action")?;
        let Some(action) = ACTIONS.iter().copied().find(|a| *a == action_name) else {
            return Err(ControlError::UnknownAction {
                action: shorten(action_name),
                hint: hint(action_name, &ACTIONS),
            });
        };
        let own_keys = action_keys(action);
        if let Some(key) = object
            .keys()
            .find(|k| !COMMON_KEYS.contains(&k.as_str()) && !own_keys.contains(&k.as_str()))
        {
            let candidates: Vec<&str> = COMMON_KEYS.iter().chain(own_keys).copied().collect();
            return Err(ControlError::UnknownKey {
                key: shorten(key),
                action,
                hint: hint(key, &candidates),
            });
        }

        // Arguments first, so a bad argument is reported before a frame count.
        let mut action = args.action(action)?;
        let signature = args.signature()?;

        let (binary, signature_frame) = match signature {
            Some(_) => match rest.split_last() {
                Some((last, binary)) => (binary, Some(last)),
                None => return Err(ControlError::MissingSignature),
            },
            None => (rest, None),
        };
        let max = usize::from(matches!(action, Action::Deploy { .. }));
        if binary.len() > max {
            return Err(ControlError::UnexpectedFrames {
                action: action.name(),
                max,
                got: binary.len(),
            });
        }
        if let Action::Deploy { package, .. } = &mut action {
            *package = binary.first().cloned();
        }
        let signed = match (signature, signature_frame) {
            (Some((user, ts, nonce)), Some(frame)) => Some(Signed {
                user,
                ts,
                nonce,
                signature: frame.clone(),
                signed_bytes: json_frame.clone(),
            }),
            _ => None,
        };
        Ok(ControlRequest { action, signed })
    }
}

/// The keys an action takes besides [`COMMON_KEYS`].
fn action_keys(action: &str) -> &'static [&'static str] {
    match action {
        "deploy" => &["app", "manifest"],
        "delete" | "reload" | "info" | "fetch" | "resolve" | "stop" | "start" => &["app"],
        "scale" => &["app", "pool-min", "pool-limit"],
        "schedule" => &["app", "task", "at", "after", "body"],
        "unschedule" => &["id"],
        _ => &[],
    }
}

/// A non-negative integer; like the manifest, `10.0` and `1e3` count as integers (up to 2^53,
/// where floats stop being exact), `10.5` does not.
fn as_integer(value: &Value) -> Option<u64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let n = value.as_number()?;
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && (0.0..=EXACT).contains(&f)).then_some(f as u64)
    })
}

/// `a string`, `a number`...: how a JSON value is described in errors.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() != 0.0) => "a fractional number",
        Value::Number(n) if n.as_f64().is_some_and(|f| f < 0.0) => "a negative number",
        Value::Number(_) if as_integer(value).is_none() => "a number too large",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to the request object's keys.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn str(&self, key: &'static str) -> Result<Option<&str>, ControlError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ControlError::WrongType {
                key,
                expected: "a string",
                found: kind(other),
            }),
        }
    }

    fn required_str(&self, key: &'static str) -> Result<&str, ControlError> {
        self.str(key)?.ok_or(ControlError::MissingKey(key))
    }

    /// A required, non-empty string.
    fn name(&self, key: &'static str) -> Result<String, ControlError> {
        let s = self.required_str(key)?;
        if s.is_empty() {
            return Err(ControlError::Empty(key));
        }
        Ok(s.to_owned())
    }

    fn u64(&self, key: &'static str) -> Result<Option<u64>, ControlError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => as_integer(v).map(Some).ok_or(ControlError::WrongType {
                key,
                expected: "a non-negative integer",
                found: kind(v),
            }),
        }
    }

    fn app(&self) -> Result<Option<String>, ControlError> {
        match self.str("app")? {
            None => Ok(None),
            Some(app) => {
                check_app_name(app).map_err(ControlError::BadAppName)?;
                Ok(Some(app.to_owned()))
            }
        }
    }

    fn required_app(&self) -> Result<String, ControlError> {
        self.app()?.ok_or(ControlError::MissingKey("app"))
    }

    fn action(&self, action: &str) -> Result<Action, ControlError> {
        Ok(match action {
            "deploy" => {
                let app = self.required_app()?;
                let manifest = match self.0.get("manifest") {
                    None => return Err(ControlError::MissingKey("manifest")),
                    Some(Value::Object(m)) => m.clone(),
                    Some(other) => {
                        return Err(ControlError::WrongType {
                            key: "manifest",
                            expected: "an object",
                            found: kind(other),
                        })
                    }
                };
                Action::Deploy {
                    app,
                    manifest,
                    package: None,
                }
            }
            "delete" => Action::Delete {
                app: self.required_app()?,
            },
            "reload" => Action::Reload {
                app: self.required_app()?,
            },
            "list" => Action::List,
            "info" => Action::Info { app: self.app()? },
            "schedule" => {
                let app = self.required_app()?;
                let task = self.name("task")?;
                let when = match (self.u64("at")?, self.u64("after")?) {
                    (Some(at), None) => When::At(at),
                    (None, Some(after)) => When::After(after),
                    (Some(_), Some(_)) => return Err(ControlError::AtAndAfter),
                    (None, None) => return Err(ControlError::NeitherAtNorAfter),
                };
                let body = match self.str("body")? {
                    None => None,
                    Some(b64) => Some(Bytes::from(
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|e| ControlError::BadBase64(shorten(&e.to_string())))?,
                    )),
                };
                Action::Schedule {
                    app,
                    task,
                    when,
                    body,
                }
            }
            "unschedule" => Action::Unschedule {
                id: self.name("id")?,
            },
            "peers" => Action::Peers,
            "fetch" => Action::Fetch {
                app: self.required_app()?,
            },
            "status" => Action::Status,
            "stop" => Action::Stop {
                app: self.required_app()?,
            },
            "start" => Action::Start {
                app: self.required_app()?,
            },
            "scale" => {
                let app = self.required_app()?;
                let pool_min = self.u64("pool-min")?;
                let pool_limit = self.u64("pool-limit")?;
                if pool_min.is_none() && pool_limit.is_none() {
                    return Err(ControlError::NothingToScale);
                }
                Action::Scale {
                    app,
                    pool_min,
                    pool_limit,
                }
            }
            "quit" => Action::Quit,
            "resolve" => Action::Resolve {
                app: self.required_app()?,
            },
            "pubkey" => Action::Pubkey,
            // The only action left: `decode` passes names from ACTIONS only.
            _ => Action::Keys,
        })
    }

    /// `(user, ts, nonce)` when the request is signed; all three or none.
    fn signature(&self) -> Result<Option<(String, u64, String)>, ControlError> {
        let user = self.str("user")?;
        let ts = self.u64("ts")?;
        let nonce = self.str("nonce")?;
        match (user, ts, nonce) {
            (None, None, None) => Ok(None),
            (Some(user), Some(ts), Some(nonce)) => {
                if user.is_empty() {
                    return Err(ControlError::Empty("user"));
                }
                if nonce.is_empty() {
                    return Err(ControlError::Empty("nonce"));
                }
                Ok(Some((user.to_owned(), ts, nonce.to_owned())))
            }
            (None, _, _) => Err(ControlError::IncompleteSignature("user")),
            (_, None, _) => Err(ControlError::IncompleteSignature("ts")),
            (_, _, None) => Err(ControlError::IncompleteSignature("nonce")),
        }
    }
}
