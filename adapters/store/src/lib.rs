//! The node's app store (DESIGN.md §3, §7): a directory holding every deployed app's
//! manifest and unpacked package, and the manual scheduler's jobs, so a node recreates its
//! apps and jobs at start.
//!
//! Layout under the root (see README.md):
//!
//! ```text
//! apps/<app>/manifest.json   the manifest, as deployed
//! apps/<app>/package/        the unpacked package, if one was deployed
//! schedule/<id>.json         a ScheduledJob
//! ```
//!
//! Every write is atomic and durable: a temporary file (its name starts with `.`), fsync,
//! rename, fsync of the directory; a package is unpacked into a temporary directory and
//! swapped in by one rename. Readers skip names starting with `.`; [`Store::open`] removes
//! the ones a crash left behind. One node owns a store at a time.

mod atomic;
mod error;
mod job;
mod name;
mod unpack;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use job::ScheduledJob;
pub use name::MAX_NAME;

const APPS: &str = "apps";
const SCHEDULE: &str = "schedule";
const MANIFEST: &str = "manifest.json";
const PACKAGE: &str = "package";

/// An app as stored: its manifest's bytes and, if a package was deployed, where it is
/// unpacked (the `base_dir` to give `Manifest::parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApp {
    pub manifest_json: Vec<u8>,
    pub package_dir: Option<PathBuf>,
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
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
    /// directories an interrupted write left behind.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_owned(),
        };
        for dir in [store.apps_dir(), store.schedule_dir()] {
            fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        }
        atomic::sync_dir(root)?;
        store.sweep()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `app` is (or would be) stored.
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.apps_dir().join(app)
    }

    /// Stores `app`: its manifest (which must be JSON; its meaning is `Manifest::parse`'s
    /// business) and, if given, its package, a tar archive unpacked into
    /// `apps/<app>/package/`. Replaces what was stored before; without a package, an old
    /// package is removed. Returns the package directory, if there is one.
    ///
    /// A hostile archive (absolute paths, `..`, links out, devices) is refused and leaves
    /// the stored app as it was.
    pub fn put_app(
        &self,
        app: &str,
        manifest_json: &[u8],
        package_tar: Option<&[u8]>,
    ) -> Result<Option<PathBuf>, StoreError> {
        name::validate(app, &self.apps_dir())?;
        let dir = self.app_dir(app);
        let manifest = dir.join(MANIFEST);
        check_json(manifest_json, &manifest)?;
        let new_app = !dir.is_dir();
        if new_app {
            fs::create_dir(&dir).map_err(StoreError::io("create directory", &dir))?;
        }
        let mut unpacked = None;
        let result = (|| {
            if let Some(tar) = package_tar {
                let tmp = atomic::temp_path(&dir, "package");
                fs::create_dir(&tmp).map_err(StoreError::io("create directory", &tmp))?;
                unpacked = Some(tmp.clone());
                unpack::unpack(tar, &tmp)?;
                atomic::sync_dir(&tmp)?;
            }
            atomic::write(&manifest, manifest_json)?;
            if new_app {
                atomic::sync_dir(&self.apps_dir())?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Leave the stored app as it was (or absent, if it was new).
            let _ = match (&unpacked, new_app) {
                (_, true) => fs::remove_dir_all(&dir),
                (Some(tmp), false) => fs::remove_dir_all(tmp),
                (None, false) => Ok(()),
            };
            return Err(e);
        }
        let package = dir.join(PACKAGE);
        let old = match unpacked {
            Some(tmp) if is_real_dir(&package) => {
                atomic::exchange(&tmp, &package)?;
                Some(tmp)
            }
            Some(tmp) => {
                fs::rename(&tmp, &package)
                    .map_err(StoreError::io("rename into place", &package))?;
                None
            }
            None if fs::symlink_metadata(&package).is_ok() => {
                let aside = atomic::temp_path(&dir, "old");
                fs::rename(&package, &aside).map_err(StoreError::io("rename aside", &package))?;
                Some(aside)
            }
            None => None,
        };
        atomic::sync_dir(&dir)?;
        if let Some(old) = old {
            remove_any(&old)?;
        }
        Ok(package_tar.map(|_| package))
    }

    /// Removes `app` and its package. Returns whether it was stored.
    pub fn delete_app(&self, app: &str) -> Result<bool, StoreError> {
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

    /// Every stored app, sorted by name, each with its own result: a missing, unreadable or
    /// corrupt manifest fails that app only. If the apps directory itself cannot be read,
    /// the one entry has an empty name.
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
        let manifest = dir.join(MANIFEST);
        let manifest_json = fs::read(&manifest).map_err(StoreError::io("read", &manifest))?;
        check_json(&manifest_json, &manifest)?;
        let package = dir.join(PACKAGE);
        Ok(StoredApp {
            manifest_json,
            package_dir: is_real_dir(&package).then_some(package),
        })
    }

    /// Stores (or replaces) `job` as `schedule/<id>.json`.
    pub fn put_job(&self, job: &ScheduledJob) -> Result<(), StoreError> {
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

    fn apps_dir(&self) -> PathBuf {
        self.root.join(APPS)
    }

    fn schedule_dir(&self) -> PathBuf {
        self.root.join(SCHEDULE)
    }

    fn job_path(&self, id: &str) -> PathBuf {
        self.schedule_dir().join(format!("{id}.json"))
    }

    /// Removes temporary entries left by an interrupted write; puts back a package that an
    /// interrupted non-atomic swap left aside.
    fn sweep(&self) -> Result<(), StoreError> {
        let apps = self.apps_dir();
        remove_temporaries(&apps, |_| false)?;
        remove_temporaries(&self.schedule_dir(), |_| false)?;
        for app in list(&apps)? {
            let dir = apps.join(&app);
            if !is_real_dir(&dir) {
                continue;
            }
            let package = dir.join(PACKAGE);
            let restore = !is_real_dir(&package);
            remove_temporaries(&dir, |tmp| {
                let is_swap = tmp
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b".swap-"));
                restore && is_swap && fs::rename(tmp, &package).is_ok()
            })?;
        }
        Ok(())
    }
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

/// Removes the temporaries in `dir`, except those `keep` takes care of (and returns true).
fn remove_temporaries(dir: &Path, mut keep: impl FnMut(&Path) -> bool) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(StoreError::io("read directory", dir))? {
        let entry = entry.map_err(StoreError::io("read directory", dir))?;
        if name::is_temporary(&entry.file_name()) && !keep(&entry.path()) {
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
