//! Atomic file replacement: write a temporary file beside the target, fsync it, rename it
//! over the target, fsync the directory. A crash at any point leaves either the old file or
//! the new one, plus at most a stray temporary file (its name starts with `.`, which every
//! reader skips and [`crate::Store::open`] sweeps).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// A fresh name in `dir` for a temporary file or directory: `.<tag>-<pid>-<n>`.
pub fn temp_path(dir: &Path, tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{tag}-{}-{n}", std::process::id()))
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().expect("store paths have a parent");
    let tmp = temp_path(dir, "tmp");
    let result = write_new(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(StoreError::io("rename into place", path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

fn write_new(tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(tmp)
        .map_err(StoreError::io("create", tmp))?;
    file.write_all(bytes)
        .map_err(StoreError::io("write", tmp))?;
    file.sync_all().map_err(StoreError::io("fsync", tmp))
}

/// Makes a directory's entries (a rename, a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}

/// Swaps two directory entries atomically (`renameat2(RENAME_EXCHANGE)`). Where the kernel
/// or filesystem cannot, falls back to three renames (`b` aside to `.swap-*`, `a` to `b`,
/// the aside to `a`); a crash in between leaves `b` missing, which [`crate::Store::open`]
/// repairs by putting the `.swap-*` back.
pub fn exchange(a: &Path, b: &Path) -> Result<(), StoreError> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let ca = CString::new(a.as_os_str().as_bytes()).expect("store paths have no NUL");
        let cb = CString::new(b.as_os_str().as_bytes()).expect("store paths have no NUL");
        // SAFETY: both strings are valid NUL-terminated paths that outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) {
            return Err(StoreError::io("exchange", b)(err));
        }
    }
    // Fallback: not atomic, but each step leaves a recoverable state.
    let aside = temp_path(b.parent().expect("store paths have a parent"), "swap");
    fs::rename(b, &aside).map_err(StoreError::io("rename aside", b))?;
    fs::rename(a, b).map_err(StoreError::io("rename into place", b))?;
    fs::rename(&aside, a).map_err(StoreError::io("rename", a))
}
