//! The node's default run folder (`cocaine-run-<pid>` in the temporary folder, where worker
//! sockets go), and the removal of those left by nodes that died without cleaning up
//! (`kill -9`, a crash).
//!
//! A live node holds an exclusive `flock` on the `lock` file of its folder for as long as it
//! runs; the kernel drops the lock when the process dies, however it dies. So a folder whose
//! lock can be taken belongs to a dead node, whatever its pid says now (pids are reused, and
//! another pid namespace may share the temporary folder). The owner writes its pid into the
//! lock file only once it holds the lock, so an empty lock file is a node still starting, and
//! is left alone.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The prefix of default run folders in the temporary folder.
const PREFIX: &str = "cocaine-run-";
const LOCK: &str = "lock";

/// A run folder this process created and holds: removed on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Held open (and locked) until the folder is removed.
    _lock: File,
}

impl RunDir {
    /// Creates `cocaine-run-<pid>` under `parent` and takes its lock.
    pub fn create(parent: &Path) -> io::Result<Self> {
        let path = parent.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path.join(LOCK))?;
        // Blocking: a sweeper of another node may hold it for a moment, sees it empty, lets go.
        flock(&lock, libc::LOCK_EX)?;
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;
        Ok(Self { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the run folders under `parent` whose node is gone; returns those removed.
/// Folders of live nodes, of other users, and anything not named like a run folder are left.
pub fn sweep(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let is_run_dir = entry
            .file_name()
            .to_str()
            .and_then(|name| name.strip_prefix(PREFIX))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if is_run_dir && owner_is_gone(&path) && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Whether the folder's lock file can be taken and says who owned it.
fn owner_is_gone(dir: &Path) -> bool {
    // Not following a symlink planted in a shared temporary folder.
    let is_own_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    let Ok(mut lock) = File::open(dir.join(LOCK)) else {
        return false;
    };
    if !is_own_dir || flock(&lock, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return false;
    }
    let mut pid = String::new();
    lock.read_to_string(&mut pid).is_ok() && !pid.trim().is_empty()
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor this function borrows; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_folder_stays_and_goes_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let run = RunDir::create(parent.path()).unwrap();
        assert!(run.path().join(LOCK).is_file());
        assert_eq!(sweep(parent.path()), Vec::<PathBuf>::new());
        assert!(run.path().is_dir());
        let path = run.path().to_owned();
        drop(run);
        assert!(!path.exists());
    }

    #[test]
    fn folders_of_dead_nodes_are_removed_and_nothing_else() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        // A dead node's folder: a lock file with a pid, nobody holding it.
        let dead = p.join("cocaine-run-4000001");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), "4000001\n").unwrap();
        std::fs::write(dead.join("worker-1.sock"), "").unwrap();
        // A node still starting: its lock file is empty.
        let starting = p.join("cocaine-run-4000002");
        std::fs::create_dir(&starting).unwrap();
        std::fs::write(starting.join(LOCK), "").unwrap();
        // Not run folders: an old-style name (a store may be `cocaine-<uid>`), no lock file,
        // a name with more after the digits, a plain file.
        let store = p.join("cocaine-1000");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join(LOCK), "1\n").unwrap();
        let no_lock = p.join("cocaine-run-4000003");
        std::fs::create_dir(&no_lock).unwrap();
        let other = p.join("cocaine-run-12x");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(LOCK), "12\n").unwrap();
        std::fs::write(p.join("cocaine-run-5"), "").unwrap();
        // A live one, held by this process.
        let live = RunDir::create(p).unwrap();

        assert_eq!(sweep(p), vec![dead.clone()]);
        assert!(!dead.exists());
        for kept in [
            &starting,
            &store,
            &no_lock,
            &other,
            &p.join("cocaine-run-5"),
        ] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert!(live.path().is_dir());
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join(LOCK), "7\n").unwrap();
        let link = parent.path().join("cocaine-run-7");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(sweep(parent.path()).is_empty());
        assert!(target.join(LOCK).exists());
    }
}
