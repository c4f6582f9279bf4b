//! App names and job ids: they become file names, so only a safe alphabet passes.

use std::path::Path;

use crate::StoreError;

/// The longest app name or job id.
pub const MAX_NAME: usize = 64;

/// Checks that `name` is non-empty, at most [`MAX_NAME`] bytes of `[A-Za-z0-9._-]`, not `.`
/// or `..`, and does not start with `.` (names starting with `.` are the store's temporary
/// files). `dir` is where it would be stored, for the error.
pub fn validate(name: &str, dir: &Path) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME {
        Some("longer than 64 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")
    } else if name.starts_with('.') {
        Some("must not start with '.'")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidName {
            name: name.to_owned(),
            path: dir.join(name),
            reason,
        }),
    }
}

/// Whether a directory entry is one of the store's temporary files or directories.
pub fn is_temporary(file_name: &std::ffi::OsStr) -> bool {
    file_name.as_encoded_bytes().starts_with(b".")
}
