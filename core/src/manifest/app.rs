//! The app's `type` and `args`: what runs the code and where the code is.

use super::error::Problems;
use super::value;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// How a worker runs the app's code (docs/manifest.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppType {
    /// The Python SDK runs the module.
    Python,
    /// The JavaScript SDK runs the module (a `.js`/`.cjs`/`.mjs` file or a package folder)
    /// with Node.js.
    Javascript,
    /// The Perl SDK runs the app's package (a `.pl`/`.pm` file) with perl.
    Perl,
    /// Any executable that speaks the worker protocol.
    Binary,
    /// A shared library with the C ABI of docs/protocol.md §9, in threads or a host process.
    Native,
}

impl AppType {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Python => "python",
            AppType::Javascript => "javascript",
            AppType::Perl => "perl",
            AppType::Binary => "binary",
            AppType::Native => "native",
        }
    }
}

pub(crate) const APP_TYPES: &[(&str, AppType)] = &[
    ("python", AppType::Python),
    ("javascript", AppType::Javascript),
    ("perl", AppType::Perl),
    ("binary", AppType::Binary),
    ("native", AppType::Native),
];

/// Where the app's code is: the manifest's `args`, which must be a `local://` URL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppArgs {
    /// `args` as written in the manifest.
    pub raw: String,
    /// The absolute path it names: `local:///abs` as is, a relative `local://dir/x` resolved
    /// against the manifest's folder; `.` and `..` are folded away without asking the
    /// filesystem. The path may be a file or a directory; nobody has checked it exists yet.
    pub path: PathBuf,
}

const LOCAL: &str = "local://";

/// Reads `args`.
pub(crate) fn parse_args(
    v: &Value,
    path: &str,
    base_dir: Option<&Path>,
    p: &mut Problems,
) -> Option<AppArgs> {
    let raw = value::string(v, path, p)?;
    let Some(rest) = raw.strip_prefix(LOCAL) else {
        let msg = match raw.split_once("://") {
            Some((scheme, _)) => format!(
                "only local:// is supported, found scheme {scheme:?}; write local:///path/to/app"
            ),
            None => format!("expected a local:// URL like local:///srv/apps/echo, found {raw:?}"),
        };
        p.add(path, msg);
        return None;
    };
    if rest.is_empty() {
        p.add(path, "local:// needs a path after it");
        return None;
    }
    let resolved = resolve(rest, base_dir, path, p)?;
    Some(AppArgs {
        raw: raw.to_owned(),
        path: resolved,
    })
}

/// Makes `given` absolute against the manifest's folder, lexically. A relative path without a
/// folder to resolve it against (a manifest that came over the network) would silently depend
/// on the node's working directory, so it is an error.
pub(crate) fn resolve(
    given: &str,
    base_dir: Option<&Path>,
    path: &str,
    p: &mut Problems,
) -> Option<PathBuf> {
    if given.contains('\0') {
        p.add(path, "a path cannot hold a NUL byte");
        return None;
    }
    let given = Path::new(given);
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else if let Some(base) = base_dir {
        base.join(given)
    } else {
        p.add(
            path,
            format!(
                "relative path {:?} but the manifest has no folder to resolve it against; \
                 use an absolute path",
                given.display().to_string()
            ),
        );
        return None;
    };
    Some(normalize(&joined))
}

/// Drops `.` and folds `name/..` without touching the filesystem (so symlinks are not
/// followed: good enough for a path an operator wrote).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` at the root stays at the root; a leading `..` of a relative base is kept.
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let n = |s: &str| normalize(Path::new(s));
        assert_eq!(n("/a/./b/../c"), PathBuf::from("/a/c"));
        assert_eq!(n("/../x"), PathBuf::from("/x"));
        assert_eq!(n("a/../../b"), PathBuf::from("../b"));
        assert_eq!(n("/srv/m/./echo.py"), PathBuf::from("/srv/m/echo.py"));
    }
}
