//! The node's app store (docs/control.md): a directory holding every deployed app's
//! revisions (manifest and unpacked package), and the manual scheduler's jobs, so a node
//! recreates its apps and jobs at start.
//!
//! Layout under the root (see README.md):
//!
//! ```text
//! apps/<app>/current              the app's current revision number, in decimal ("3\n")
//! apps/<app>/r<N>/manifest.json   revision N's manifest, as deployed
//! apps/<app>/r<N>/package/        revision N's unpacked package, if it had one
//! apps/<app>/r<N>/package.tar     the package as deployed, so it can be copied to peers
//! schedule/<id>.json              a ScheduledJob
//! tombstones/<app>.json           a replicated app's deletion (bytes the core gives and reads)
//! ```
//!
//! An app folder in the layout from before revisions (`manifest.json` and `package/` in it,
//! no `current`) is read as revision 0.
//!
//! An app keeps several revisions because, during a redeploy, the old version keeps running
//! (and spawning workers from its package) while the new one starts: the new revision is
//! written beside the old one, the core reverts to the old one if the new version fails to
//! start ([`Store::revert`]) and drops a revision once its version has left
//! ([`Store::drop_revision`]).
//!
//! Every write is atomic and durable: a temporary file or directory (its name starts with
//! `.`), fsync, rename, fsync of the directory. A revision is built whole in a temporary
//! directory and renamed into place before `current` is switched to it. Readers skip names
//! starting with `.`; [`Store::open`] removes the ones a crash left behind, and the revisions
//! that are not current. One node owns a store at a time.

mod atomic;
mod error;
mod job;
mod name;
mod revision;
mod unpack;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use error::StoreError;
pub use job::ScheduledJob;
pub use name::MAX_NAME;

use revision::{CURRENT, MANIFEST, PACKAGE, PACKAGE_TAR};

const APPS: &str = "apps";
const SCHEDULE: &str = "schedule";
/// Present in an app's folder while the app is stopped (`cocaine stop`): a restart keeps it
/// stopped. A new deploy removes it.
const STOPPED: &str = "stopped";
const TOMBSTONES: &str = "tombstones";

/// An app as stored: its current revision's manifest bytes and, if a package was deployed
/// with it, where it is unpacked (the `base_dir` to give `Manifest::parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApp {
    pub manifest_json: Vec<u8>,
    pub package_dir: Option<PathBuf>,
    /// The package archive as deployed, kept beside the unpacked folder (none for a revision
    /// stored before archives were kept, or without a package).
    pub package_tar: Option<Vec<u8>>,
    /// The revision's number (0 for an app stored in the layout from before revisions).
    pub revision: u64,
    /// Whether the app was stopped (see [`Store::set_stopped`]).
    pub stopped: bool,
}

/// What [`Store::put_app`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRevision {
    /// The new revision, now the app's current one.
    pub revision: u64,
    /// Where its package is unpacked, if one was given.
    pub package_dir: Option<PathBuf>,
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The last revision handed out per app by this process. A deleted app's folder is gone,
    /// but the version that ran it may still be leaving (and be dropped later by number): a
    /// redeploy must not reuse its number, so numbers are never reused within a run. Across
    /// restarts the folder is enough: nothing of the previous run is still running.
    issued: Arc<Mutex<HashMap<String, u64>>>,
    /// The root's entries are not known to be durable yet: the first write of this run syncs
    /// the root first. Not at `open`, where the fsync (milliseconds, more on a busy disk)
    /// would come before the node's first worker is started. Every run syncs once, not only
    /// the run that created the layout: a run that created it may have stopped before any
    /// write, and its entries need not have reached the disk.
    unsynced_root: Arc<AtomicBool>,
}

impl Store {
    /// The store used without `--store`: `/var/lib/cocaine` for root; otherwise
    /// `$XDG_STATE_HOME/cocaine` (if set and absolute), else `$HOME/.local/state/cocaine`,
    /// else `<temp dir>/cocaine-<uid>`.
    pub fn default_root() -> PathBuf {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        default_root_for(
            uid,
            std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }

    /// Opens the store at `root`, creating its layout, and removes the temporary files and
    /// directories an interrupted write left behind, and every app's revisions other than
    /// its current one (the node restarts only that one).
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_owned(),
            issued: Arc::default(),
            unsynced_root: Arc::new(AtomicBool::new(true)),
        };
        for dir in [store.apps_dir(), store.schedule_dir()] {
            fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        }
        store.sweep()?;
        Ok(store)
    }

    /// Makes the layout `open` created durable before anything is written into it: a write
    /// synced into `apps/` is only as durable as `apps/` itself.
    fn sync_root_once(&self) -> Result<(), StoreError> {
        if self.unsynced_root.swap(false, Ordering::SeqCst) {
            if let Err(e) = atomic::sync_dir(&self.root) {
                self.unsynced_root.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether the root still waits for its first sync (for tests).
    #[doc(hidden)]
    pub fn root_unsynced(&self) -> bool {
        self.unsynced_root.load(Ordering::SeqCst)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `app` is (or would be) stored.
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.apps_dir().join(app)
    }

    /// Where revision `revision` of `app` is (or would be) stored.
    pub fn revision_dir(&self, app: &str, revision: u64) -> PathBuf {
        revision::dir(&self.app_dir(app), revision)
    }

    /// Stores a new revision of `app`: its manifest (which must be JSON; its meaning is
    /// `Manifest::parse`'s business) and, if given, its package, a tar archive unpacked into
    /// `apps/<app>/r<N>/package/`; then makes it the app's current revision. Earlier
    /// revisions stay on disk until [`Store::drop_revision`] (or the next [`Store::open`]).
    /// The number is greater than every revision of the app on disk (and every one this
    /// process handed out for it).
    ///
    /// A hostile archive (absolute paths, `..`, links out, devices) is refused and leaves
    /// the stored app as it was.
    pub fn put_app(
        &self,
        app: &str,
        manifest_json: &[u8],
        package_tar: Option<&[u8]>,
    ) -> Result<PutRevision, StoreError> {
        self.sync_root_once()?;
        let apps = self.apps_dir();
        name::validate(app, &apps)?;
        let dir = self.app_dir(app);
        check_json(manifest_json, &dir.join(MANIFEST))?;
        let exists = match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => true,
            Ok(_) => {
                return Err(StoreError::Corrupt {
                    path: dir,
                    reason: "not a directory".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(StoreError::io("read", &dir)(e)),
        };
        let revision = self.next_revision(app, &dir)?;
        let package_dir = package_tar.map(|_| revision::dir(&dir, revision).join(PACKAGE));
        if exists {
            // Built aside, renamed into place, and only then made current: a crash leaves
            // either a temporary or a non-current revision, both swept at the next open.
            let tmp = atomic::temp_path(&dir, "rev");
            let target = revision::dir(&dir, revision);
            let built = build_revision(&tmp, manifest_json, package_tar).and_then(|()| {
                fs::rename(&tmp, &target).map_err(StoreError::io("rename into place", &target))
            });
            if let Err(e) = built {
                let _ = remove_any(&tmp);
                return Err(e);
            }
            let previous = revision::read_current(&dir).ok();
            let switched = atomic::sync_dir(&dir).and_then(|()| {
                atomic::write(&dir.join(CURRENT), &revision::current_bytes(revision))
            });
            if let Err(e) = switched {
                // The caller hears of a failure and keeps running the old version, so a
                // restart must find the old one too: put `current` back if the rename
                // happened, and drop the new revision unless it could not be undone.
                let current = || revision::read_current(&dir).ok();
                if let (Some(previous), Some(true)) = (previous, current().map(|c| c == revision)) {
                    let _ = atomic::write(&dir.join(CURRENT), &revision::current_bytes(previous));
                }
                if current() != Some(revision) {
                    let _ = remove_any(&target);
                }
                return Err(e);
            }
            // A deploy starts the app: it is no longer stopped.
            self.set_stopped(app, false)?;
        } else {
            // A new app: its whole folder (revision and `current`) is built aside and appears
            // with one rename, so there is never an app folder without a current revision.
            let tmp = atomic::temp_path(&apps, "app");
            let built = (|| {
                fs::create_dir(&tmp).map_err(StoreError::io("create directory", &tmp))?;
                build_revision(&revision::dir(&tmp, revision), manifest_json, package_tar)?;
                atomic::write_new(&tmp.join(CURRENT), &revision::current_bytes(revision))?;
                atomic::sync_dir(&tmp)?;
                fs::rename(&tmp, &dir).map_err(StoreError::io("rename into place", &dir))
            })();
            if let Err(e) = built {
                let _ = remove_any(&tmp);
                return Err(e);
            }
            if let Err(e) = atomic::sync_dir(&apps) {
                // Reported as failed, so it must not come back at a restart.
                let _ = self.delete_app(app);
                return Err(e);
            }
        }
        Ok(PutRevision {
            revision,
            package_dir,
        })
    }

    /// The redeploy that stored revision `from` failed, and the version of revision `to` keeps
    /// running: if `from` is the app's current revision, `to` becomes current again (durably:
    /// a restart finds `to`); then `from` is removed. If `from` is not current (a later
    /// deploy, or this was done before), only `from` is removed. Idempotent; an app or
    /// revision that is not stored is fine, and `to == from` changes nothing.
    ///
    /// If `from` is current and `to` is not on disk, nothing changes and the error says so:
    /// removing `from` would leave the app with no revision to restart, and keeping it as
    /// current restarts what was deployed last rather than nothing.
    pub fn revert(&self, app: &str, to: u64, from: u64) -> Result<(), StoreError> {
        self.sync_root_once()?;
        name::validate(app, &self.apps_dir())?;
        let dir = self.app_dir(app);
        if to == from || !is_real_dir(&dir) {
            return Ok(());
        }
        if revision::read_current(&dir)? == from {
            if !revision::exists(&dir, to) {
                return Err(StoreError::MissingRevision {
                    path: revision::dir(&dir, to),
                    revision: to,
                    reason: "cannot revert to it: the current revision stays",
                });
            }
            atomic::write(&dir.join(CURRENT), &revision::current_bytes(to))?;
        }
        remove_revision(&dir, from)?;
        Ok(())
    }

    /// The version of revision `revision` has left: removes its files, unless it is the app's
    /// current revision (then nothing changes). Returns whether files were removed. An app or
    /// revision that is not stored is fine.
    pub fn drop_revision(&self, app: &str, revision: u64) -> Result<bool, StoreError> {
        self.sync_root_once()?;
        name::validate(app, &self.apps_dir())?;
        let dir = self.app_dir(app);
        if !is_real_dir(&dir) || !revision::present(&dir, revision) {
            return Ok(false);
        }
        // Without a readable `current` we cannot know the revision is not the one a restart
        // needs: refuse rather than guess.
        if revision::read_current(&dir)? == revision {
            return Ok(false);
        }
        remove_revision(&dir, revision)
    }

    /// Marks `app` stopped (an empty `apps/<app>/stopped` file, fsynced) or running again.
    /// An app that is not stored is an error.
    pub fn set_stopped(&self, app: &str, stopped: bool) -> Result<(), StoreError> {
        self.sync_root_once()?;
        name::validate(app, &self.apps_dir())?;
        let dir = self.app_dir(app);
        if !is_real_dir(&dir) {
            return Err(StoreError::Corrupt {
                path: dir,
                reason: "no such app in the store".into(),
            });
        }
        let marker = dir.join(STOPPED);
        if stopped {
            atomic::write(&marker, b"")?;
        } else {
            match fs::remove_file(&marker) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StoreError::io("remove", &marker)(e)),
            }
        }
        atomic::sync_dir(&dir)
    }

    /// Removes `app` with all its revisions. Returns whether it was stored.
    pub fn delete_app(&self, app: &str) -> Result<bool, StoreError> {
        self.sync_root_once()?;
        name::validate(app, &self.apps_dir())?;
        let dir = self.app_dir(app);
        let aside = atomic::temp_path(&self.apps_dir(), "deleted");
        match fs::rename(&dir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io("rename aside", &dir)(e)),
        }
        atomic::sync_dir(&self.apps_dir())?;
        remove_any(&aside)?;
        Ok(true)
    }

    /// Every stored app's current revision, sorted by name, each with its own result: a
    /// missing, unreadable or corrupt `current` or manifest fails that app only. If the apps
    /// directory itself cannot be read, the one entry has an empty name.
    pub fn load_apps(&self) -> Vec<(String, Result<StoredApp, StoreError>)> {
        let apps = self.apps_dir();
        let names = match list(&apps) {
            Ok(names) => names,
            Err(e) => return vec![(String::new(), Err(e))],
        };
        names
            .into_iter()
            .map(|name| {
                let result = name::validate(&name, &apps).and_then(|()| self.load_app(&name));
                (name, result)
            })
            .collect()
    }

    fn load_app(&self, app: &str) -> Result<StoredApp, StoreError> {
        let dir = self.app_dir(app);
        let revision = revision::read_current(&dir)?;
        let rev_dir = revision::dir(&dir, revision);
        let manifest = rev_dir.join(MANIFEST);
        let manifest_json = fs::read(&manifest).map_err(StoreError::io("read", &manifest))?;
        check_json(&manifest_json, &manifest)?;
        let package = rev_dir.join(PACKAGE);
        let package_dir = is_real_dir(&package).then_some(package);
        let archive = rev_dir.join(PACKAGE_TAR);
        let package_tar = match (&package_dir, revision) {
            (Some(_), 1..) => match fs::read(&archive) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(StoreError::io("read", &archive)(e)),
            },
            _ => None,
        };
        Ok(StoredApp {
            manifest_json,
            package_dir,
            package_tar,
            revision,
            stopped: dir.join(STOPPED).exists(),
        })
    }

    /// Stores (or replaces) `job` as `schedule/<id>.json`.
    pub fn put_job(&self, job: &ScheduledJob) -> Result<(), StoreError> {
        self.sync_root_once()?;
        let dir = self.schedule_dir();
        name::validate(&job.id, &dir)?;
        name::validate(&job.app, &self.apps_dir())?;
        let path = self.job_path(&job.id);
        let json = serde_json::to_vec_pretty(job).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("cannot serialize: {e}"),
        })?;
        atomic::write(&path, &json)
    }

    /// Removes job `id`. Returns whether it was stored.
    pub fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        self.sync_root_once()?;
        name::validate(id, &self.schedule_dir())?;
        let path = self.job_path(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::io("remove", &path)(e)),
        }
        atomic::sync_dir(&self.schedule_dir())?;
        Ok(true)
    }

    /// Every stored job, sorted by id, each with its own result: a corrupt file (or one
    /// whose `id` is not its file name) fails that job only.
    pub fn load_jobs(&self) -> Vec<Result<ScheduledJob, StoreError>> {
        let dir = self.schedule_dir();
        let names = match list(&dir) {
            Ok(names) => names,
            Err(e) => return vec![Err(e)],
        };
        names
            .into_iter()
            .map(|name| {
                let path = dir.join(&name);
                let Some(id) = name.strip_suffix(".json") else {
                    return Err(StoreError::Corrupt {
                        path,
                        reason: "not a job file (<id>.json)".into(),
                    });
                };
                let bytes = fs::read(&path).map_err(StoreError::io("read", &path))?;
                let job: ScheduledJob =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if job.id != id {
                    return Err(StoreError::Corrupt {
                        path,
                        reason: format!("its id {:?} is not its file name", job.id),
                    });
                }
                Ok(job)
            })
            .collect()
    }

    /// Stores (or replaces) the tombstone of `app` as `tombstones/<app>.json`; its bytes are
    /// the core's (the store only checks they are JSON).
    pub fn put_tombstone(&self, app: &str, record_json: &[u8]) -> Result<(), StoreError> {
        self.sync_root_once()?;
        let dir = self.root.join(TOMBSTONES);
        name::validate(app, &dir)?;
        let path = dir.join(format!("{app}.json"));
        check_json(record_json, &path)?;
        if !is_real_dir(&dir) {
            fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
            atomic::sync_dir(&self.root)?;
        }
        atomic::write(&path, record_json)
    }

    /// Every stored tombstone, sorted by app, each with its own result (a file that cannot be
    /// read fails that one only). No folder means none.
    pub fn load_tombstones(&self) -> Vec<(String, Result<Vec<u8>, StoreError>)> {
        let dir = self.root.join(TOMBSTONES);
        if !is_real_dir(&dir) {
            return Vec::new();
        }
        let names = match list(&dir) {
            Ok(names) => names,
            Err(e) => return vec![(String::new(), Err(e))],
        };
        names
            .into_iter()
            .map(|name| {
                let path = dir.join(&name);
                let Some(app) = name.strip_suffix(".json") else {
                    let reason = "not a tombstone file (<app>.json)".into();
                    return (name, Err(StoreError::Corrupt { path, reason }));
                };
                let read = fs::read(&path).map_err(StoreError::io("read", &path));
                (app.to_owned(), read)
            })
            .collect()
    }

    fn apps_dir(&self) -> PathBuf {
        self.root.join(APPS)
    }

    fn schedule_dir(&self) -> PathBuf {
        self.root.join(SCHEDULE)
    }

    fn job_path(&self, id: &str) -> PathBuf {
        self.schedule_dir().join(format!("{id}.json"))
    }

    /// The number for a new revision of `app`: above every revision on disk (and the one
    /// `current` names), and above every one handed out for `app` by this process.
    fn next_revision(&self, app: &str, dir: &Path) -> Result<u64, StoreError> {
        let on_disk = revision::on_disk(dir)?.last().copied().unwrap_or(0);
        let current = revision::read_current(dir).unwrap_or(0);
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let last = issued.entry(app.to_owned()).or_insert(0);
        let next = (*last)
            .max(on_disk)
            .max(current)
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt {
                path: dir.to_owned(),
                reason: "no revision number left".into(),
            })?;
        *last = next;
        Ok(next)
    }

    /// Removes temporary entries left by an interrupted write, and the revisions of each app
    /// that are not its current one (a crash before their `DropRevision`, or a put whose
    /// `current` switch never happened). Only done for an app whose current revision reads
    /// well: otherwise the others are kept for whoever repairs it.
    fn sweep(&self) -> Result<(), StoreError> {
        let apps = self.apps_dir();
        remove_temporaries(&apps)?;
        remove_temporaries(&self.schedule_dir())?;
        let tombstones = self.root.join(TOMBSTONES);
        if is_real_dir(&tombstones) {
            remove_temporaries(&tombstones)?;
        }
        for app in list(&apps)? {
            let dir = apps.join(&app);
            if !is_real_dir(&dir) {
                continue;
            }
            remove_temporaries(&dir)?;
            if self.load_app(&app).is_err() {
                continue;
            }
            let current = revision::read_current(&dir)?;
            for stale in revision::on_disk(&dir)? {
                if stale != current {
                    remove_revision(&dir, stale)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes revision files into `dir` (which must not exist): the manifest and the unpacked
/// package, each fsynced, then the folder itself.
fn build_revision(
    dir: &Path,
    manifest_json: &[u8],
    package_tar: Option<&[u8]>,
) -> Result<(), StoreError> {
    fs::create_dir(dir).map_err(StoreError::io("create directory", dir))?;
    atomic::write_new(&dir.join(MANIFEST), manifest_json)?;
    if let Some(tar) = package_tar {
        atomic::write_new(&dir.join(PACKAGE_TAR), tar)?;
        let package = dir.join(PACKAGE);
        fs::create_dir(&package).map_err(StoreError::io("create directory", &package))?;
        unpack::unpack(tar, &package)?;
        atomic::sync_dir(&package)?;
    }
    atomic::sync_dir(dir)
}

/// Removes revision `revision` from `app_dir`, if it is there: renamed aside first (so no
/// reader ever sees half of it), then deleted. Returns whether it was there.
fn remove_revision(app_dir: &Path, revision: u64) -> Result<bool, StoreError> {
    let mut aside = Vec::new();
    for entry in revision::entries(app_dir, revision) {
        let tmp = atomic::temp_path(app_dir, "dropped");
        match fs::rename(&entry, &tmp) {
            Ok(()) => aside.push(tmp),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("rename aside", &entry)(e)),
        }
    }
    if aside.is_empty() {
        return Ok(false);
    }
    atomic::sync_dir(app_dir)?;
    aside.iter().try_for_each(|tmp| remove_any(tmp))?;
    Ok(true)
}

/// [`Store::default_root`] for the given user and environment.
pub fn default_root_for(
    uid: u32,
    xdg_state_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> PathBuf {
    if uid == 0 {
        return PathBuf::from("/var/lib/cocaine");
    }
    if let Some(xdg) = xdg_state_home.filter(|p| p.is_absolute()) {
        return xdg.join("cocaine");
    }
    if let Some(home) = home.filter(|p| p.is_absolute()) {
        return home.join(".local/state/cocaine");
    }
    std::env::temp_dir().join(format!("cocaine-{uid}"))
}

fn check_json(bytes: &[u8], path: &Path) -> Result<(), StoreError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("not JSON: {e}"),
        })
}

fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// The names in `dir`, sorted, without the store's temporaries.
fn list(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io("read directory", dir))? {
        let entry = entry.map_err(StoreError::io("read directory", dir))?;
        let name = entry.file_name();
        if name::is_temporary(&name) {
            continue;
        }
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Removes the temporaries in `dir`.
fn remove_temporaries(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(StoreError::io("read directory", dir))? {
        let entry = entry.map_err(StoreError::io("read directory", dir))?;
        if name::is_temporary(&entry.file_name()) {
            remove_any(&entry.path())?;
        }
    }
    Ok(())
}

/// Removes a file, symlink or directory tree (never following symlinks).
fn remove_any(path: &Path) -> Result<(), StoreError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(StoreError::io("remove", path))
}
