//! Revisions of an app on disk: the names of their folders and the `current` pointer.
//!
//! Revision `N` (N >= 1) lives in `apps/<app>/r<N>/`. Revision 0 is the layout of stores
//! written before revisions existed: `manifest.json` and `package/` directly in the app's
//! folder, with no `current` file; it is read as the app's current revision so such a store
//! keeps working (and a corrupt legacy manifest is reported as such).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The file in an app's folder that holds its current revision's number.
pub const CURRENT: &str = "current";
pub const MANIFEST: &str = "manifest.json";
pub const PACKAGE: &str = "package";
pub const PACKAGE_TAR: &str = "package.tar";

/// The folder of revision `revision` of the app stored in `app_dir`.
pub fn dir(app_dir: &Path, revision: u64) -> PathBuf {
    match revision {
        0 => app_dir.to_owned(),
        n => app_dir.join(format!("r{n}")),
    }
}

/// The revision a directory entry of an app's folder is, if it is one (`r<N>`, N >= 1, in
/// canonical decimal so that two names never mean the same revision).
pub fn parse_dir_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('r')?;
    let n: u64 = digits.parse().ok()?;
    (n >= 1 && format!("{n}") == digits).then_some(n)
}

/// The bytes of the `current` file for `revision`.
pub fn current_bytes(revision: u64) -> Vec<u8> {
    format!("{revision}\n").into_bytes()
}

/// The app's current revision: the number in `current`; without that file, 0 if a legacy
/// `manifest.json` is there. Anything else (no `current` and no manifest, an unreadable or
/// malformed `current`) is an error naming the file.
pub fn read_current(app_dir: &Path) -> Result<u64, StoreError> {
    let path = app_dir.join(CURRENT);
    match fs::read(&path) {
        Ok(bytes) => parse_current(&bytes).ok_or_else(|| StoreError::Corrupt {
            path,
            reason: format!(
                "not a revision number: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(32)])
            ),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(app_dir.join(MANIFEST)).is_ok() {
                return Ok(0);
            }
            // Tell an app's folder from something else only if the folder itself is there.
            fs::symlink_metadata(app_dir).map_err(StoreError::io("read", app_dir))?;
            Err(StoreError::Corrupt {
                path: app_dir.to_owned(),
                reason: format!("no {CURRENT} file (and no legacy {MANIFEST}): not a stored app"),
            })
        }
        Err(e) => Err(StoreError::io("read", path)(e)),
    }
}

fn parse_current(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_suffix('\n').unwrap_or(text);
    let n: u64 = digits.parse().ok()?;
    (format!("{n}") == digits).then_some(n)
}

/// Whether revision `revision` is on disk: its manifest is there.
pub fn exists(app_dir: &Path, revision: u64) -> bool {
    fs::symlink_metadata(dir(app_dir, revision).join(MANIFEST)).is_ok_and(|m| m.is_file())
}

/// The directory entries of `app_dir` that make up revision `revision`: its folder, or for
/// the legacy revision 0, the manifest and package beside `current`.
pub fn entries(app_dir: &Path, revision: u64) -> Vec<PathBuf> {
    match revision {
        0 => vec![app_dir.join(MANIFEST), app_dir.join(PACKAGE)],
        n => vec![dir(app_dir, n)],
    }
}

/// Whether anything of revision `revision` is on disk, even a part of it.
pub fn present(app_dir: &Path, revision: u64) -> bool {
    entries(app_dir, revision)
        .iter()
        .any(|e| fs::symlink_metadata(e).is_ok())
}

/// The revisions on disk in `app_dir` (0 for a legacy manifest), sorted. A missing folder has
/// none.
pub fn on_disk(app_dir: &Path) -> Result<Vec<u64>, StoreError> {
    let entries = match fs::read_dir(app_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("read directory", app_dir)(e)),
    };
    let mut revisions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io("read directory", app_dir))?;
        let name = entry.file_name();
        match name.to_str() {
            Some(MANIFEST) => revisions.push(0),
            Some(name) => revisions.extend(parse_dir_name(name)),
            None => {}
        }
    }
    revisions.sort_unstable();
    Ok(revisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_canonical() {
        assert_eq!(parse_dir_name("r1"), Some(1));
        assert_eq!(parse_dir_name("r42"), Some(42));
        for bad in ["r0", "r01", "r", "r-1", "r+1", "x1", "r1 ", "package"] {
            assert_eq!(parse_dir_name(bad), None, "{bad}");
        }
        assert_eq!(parse_current(b"7\n"), Some(7));
        assert_eq!(parse_current(b"7"), Some(7));
        assert_eq!(parse_current(b"0\n"), Some(0));
        for bad in [&b""[..], b"\n", b"07\n", b" 7\n", b"7\n\n", b"x", b"-1"] {
            assert_eq!(parse_current(bad), None, "{bad:?}");
        }
        assert_eq!(parse_current(&current_bytes(123)), Some(123));
    }
}
