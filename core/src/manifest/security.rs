//! The optional `security` section: signed requests (docs/manifest.md, docs/protocol.md §10).

use super::app;
use super::error::Problems;
use super::reader::Obj;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the app's requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecurityConfig {
    /// Refuse requests without a valid signature (401). Default false.
    pub sign: bool,
    /// How far a request's timestamp may be from the node's clock, either way; also how long
    /// nonces are remembered (manifest: seconds, fractions allowed, default 30).
    pub window: Duration,
    /// A key store folder for this app's users, resolved like `args`; `None` uses the node's.
    pub keys: Option<PathBuf>,
}

/// The default signature window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            sign: false,
            window: DEFAULT_WINDOW,
            keys: None,
        }
    }
}

pub(crate) fn parse(
    v: &Value,
    path: &str,
    base_dir: Option<&Path>,
    p: &mut Problems,
) -> Option<SecurityConfig> {
    let mut o = Obj::new(v, path, "an object", p)?;
    let d = SecurityConfig::default();
    let c = SecurityConfig {
        sign: o.bool("sign", p).unwrap_or(d.sign),
        window: o.secs("window", p).unwrap_or(d.window),
        keys: o.opt("keys", p, |v, at, p| {
            app::resolve(super::value::non_empty(v, at, p)?, base_dir, at, p)
        }),
    };
    o.finish(p);
    Some(c)
}
