//! The optional `security` section: who may call the app's native-protocol tasks
//! (native-server, native-sink). Given at the top level it applies to every such task; a task
//! may carry its own, which replaces it (docs/manifest.md, docs/security.md).

use super::app;
use super::error::Problems;
use super::reader::Obj;
use super::tasks::strings;
use super::value;
use crate::auth::{check_user_name, AuthMode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the requests of a task are authenticated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecurityConfig {
    /// `off`: signatures are neither needed nor checked and no user is passed on; `optional`
    /// (the default): unsigned requests pass without a user, signed ones must verify;
    /// `required`: every request must be signed and verify (401 otherwise).
    pub auth: AuthMode,
    /// The users who may call (403 for any other verified user); `None` lets every user with
    /// a key in the node's key store call. Only with `auth: required`.
    pub users: Option<Vec<String>>,
    /// True when `auth` is `required` (the older spelling `"sign": true` sets it).
    pub sign: bool,
    /// How far a request's timestamp may be from the node's clock, either way (manifest:
    /// seconds, fractions allowed, default 30). The node's own window (30 s) bounds it: a
    /// longer one here changes nothing.
    pub window: Duration,
    /// A key store folder for this app's users, resolved like `args`. Not supported yet: a
    /// node refuses to start an app that sets it (keys go in the node's key folder).
    pub keys: Option<PathBuf>,
}

/// The default signature window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            auth: AuthMode::Optional,
            users: None,
            sign: false,
            window: DEFAULT_WINDOW,
            keys: None,
        }
    }
}

const MODES: &[(&str, AuthMode)] = &[
    ("off", AuthMode::Off),
    ("optional", AuthMode::Optional),
    ("required", AuthMode::Required),
];

pub(crate) fn parse(
    v: &Value,
    path: &str,
    base_dir: Option<&Path>,
    p: &mut Problems,
) -> Option<SecurityConfig> {
    let mut o = Obj::new(v, path, "an object", p)?;
    let d = SecurityConfig::default();
    let sign = o.bool("sign", p);
    let auth = o.opt("auth", p, |v, at, p| value::choice(v, at, MODES, p));
    let users = o.opt("users", p, users);
    let auth = resolve_mode(auth, sign, users.is_some(), &o.at("auth"), p);
    let c = SecurityConfig {
        auth,
        users,
        sign: auth == AuthMode::Required,
        window: o.secs("window", p).unwrap_or(d.window),
        keys: o.opt("keys", p, |v, at, p| {
            app::resolve(super::value::non_empty(v, at, p)?, base_dir, at, p)
        }),
    };
    o.finish(p);
    Some(c)
}

/// `auth`, or what `sign` and `users` imply: `users` needs signatures, and so does `sign: true`.
fn resolve_mode(
    auth: Option<AuthMode>,
    sign: Option<bool>,
    has_users: bool,
    at: &str,
    p: &mut Problems,
) -> AuthMode {
    let implied = if sign == Some(true) || has_users {
        AuthMode::Required
    } else {
        AuthMode::Optional
    };
    let Some(auth) = auth else { return implied };
    if auth != AuthMode::Required && implied == AuthMode::Required {
        let why = if has_users {
            "\"users\""
        } else {
            "\"sign\": true"
        };
        p.add(
            at,
            format!(
                "{why} needs \"auth\": \"required\", found {:?}",
                auth.name()
            ),
        );
    }
    auth
}

fn users(v: &Value, at: &str, p: &mut Problems) -> Option<Vec<String>> {
    let names = strings(v, at, p)?;
    for (i, name) in names.iter().enumerate() {
        if let Err(e) = check_user_name(name) {
            p.add(format!("{at}[{i}]"), e.to_string());
        }
    }
    Some(names)
}

/// A native-protocol task's `security`: its own section, or else the app's.
pub(crate) fn task_security(
    o: &mut Obj<'_>,
    base_dir: Option<&Path>,
    app_level: Option<&SecurityConfig>,
    p: &mut Problems,
) -> Option<SecurityConfig> {
    o.opt("security", p, |v, at, p| parse(v, at, base_dir, p))
        .or_else(|| app_level.cloned())
}
