//! `cocaine node --watch DIR`, in the style of uWSGI's emperor: the folder's manifests are the
//! apps. Every `*.json` file (not hidden) is the manifest of the app named after the file's
//! stem; a file that appears or changes is deployed (the core redeploys a running name), one
//! that goes away (removed, renamed away) removes its app. Inputs go to the node's [`Inbox`]
//! with `AppOrigin::Watched`.
//!
//! Events from `notify` (inotify on Linux) only say "look again": after a burst of them has
//! calmed down for [`DEBOUNCE`] (editors write a file in several steps), the watcher thread
//! rescans the whole folder and compares each file's content with what it saw last, by hash.
//! A rescan cannot miss a rename or an overflowed event queue, and unchanged content (a
//! `touch`, an editor saving without changes) deploys nothing. A file that does not parse is
//! reported (file and key) and the running version, if any, is kept.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cocaine_core::control::check_app_name;
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{AppOrigin, Input};
use cocaine_core::process::LogLevel;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::inbox::Inbox;

/// How long the folder must stay quiet after an event before it is rescanned.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// A folder written to without a pause is still rescanned this often.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Where the watcher's log lines go (it runs on a thread of its own).
pub type LogFn = Box<dyn FnMut(LogLevel, &str) + Send>;

/// Why a folder cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: not a folder", .0.display())]
    NotAFolder(PathBuf),
    #[error("cannot watch {}: {source}", path.display())]
    Notify {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the folder watcher's thread: {0}")]
    Thread(#[source] io::Error),
}

enum Message {
    Event(notify::Result<Event>),
    Stop,
}

/// What a followed folder's thread does: tell whether an event may change the folder, and
/// rescan it.
pub(crate) trait Rescan: Send + 'static {
    fn relevant(&mut self, event: notify::Result<Event>) -> bool;
    fn scan(&mut self);
}

/// A folder followed by a thread of its own: scanned once before `start` returns, then
/// rescanned once each burst of events has calmed down. Dropping it stops the thread.
pub(crate) struct Followed {
    messages: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
    // Kept for its side effect: events flow while it lives.
    _watcher: RecommendedWatcher,
}

impl Followed {
    /// Follows `dir` with the scanner `make` builds for its absolute path.
    pub(crate) fn start<S: Rescan>(
        dir: &Path,
        thread_name: &str,
        debounce: Duration,
        make: impl FnOnce(PathBuf) -> S,
    ) -> Result<Followed, WatchError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        if !dir.is_dir() {
            return Err(WatchError::NotAFolder(dir));
        }
        let (messages, received) = mpsc::channel();
        let events = messages.clone();
        let notify_error = |source| WatchError::Notify {
            path: dir.clone(),
            source,
        };
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Message::Event(event));
        })
        .map_err(notify_error)?;
        // Watch first, then scan: a change made during the scan is an event, not lost.
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(notify_error)?;
        let mut scanner = make(dir);
        scanner.scan();
        let thread = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || follow(scanner, received, debounce))
            .map_err(WatchError::Thread)?;
        Ok(Followed {
            messages,
            thread: Some(thread),
            _watcher: watcher,
        })
    }
}

impl Drop for Followed {
    fn drop(&mut self) {
        let _ = self.messages.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running folder watcher. Dropping it stops its thread.
pub struct FolderWatcher {
    _followed: Followed,
}

impl FolderWatcher {
    /// Watches `dir`: deploys every manifest in it now (the inputs are in `inbox` when this
    /// returns), then follows its changes on a thread of its own.
    pub fn start(dir: &Path, inbox: Inbox, log: LogFn) -> Result<FolderWatcher, WatchError> {
        Self::with_debounce(dir, inbox, log, DEBOUNCE)
    }

    /// [`FolderWatcher::start`] with another quiet time before a rescan.
    pub fn with_debounce(
        dir: &Path,
        inbox: Inbox,
        log: LogFn,
        debounce: Duration,
    ) -> Result<FolderWatcher, WatchError> {
        let followed = Followed::start(dir, "cocaine-watch", debounce, |dir| {
            let mut folder = Folder {
                dir,
                known: BTreeMap::new(),
                inbox,
                log,
            };
            folder.say(
                LogLevel::Info,
                format!("watching {} for manifests", folder.dir.display()),
            );
            folder
        })?;
        Ok(FolderWatcher {
            _followed: followed,
        })
    }
}

/// The follower's thread: waits for a relevant event, lets the burst calm down, rescans.
fn follow<S: Rescan>(mut folder: S, messages: mpsc::Receiver<Message>, debounce: Duration) {
    loop {
        match messages.recv() {
            Ok(Message::Event(event)) => {
                if !folder.relevant(event) {
                    continue;
                }
            }
            Ok(Message::Stop) | Err(_) => return,
        }
        let first = Instant::now();
        let mut quiet_at = first + debounce;
        loop {
            let until = quiet_at.min(first + MAX_DELAY);
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            match messages.recv_timeout(left) {
                Ok(Message::Event(event)) => {
                    if folder.relevant(event) {
                        quiet_at = Instant::now() + debounce;
                    }
                }
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        folder.scan();
    }
}

/// What the watcher knows of one manifest file.
struct Known {
    /// The content seen last, deployed or not; none before the first read.
    seen: Option<u64>,
    /// The content last deployed, if any was.
    deployed: Option<u64>,
}

struct Folder {
    dir: PathBuf,
    /// By app name (the file's stem).
    known: BTreeMap<String, Known>,
    inbox: Inbox,
    log: LogFn,
}

impl Folder {
    fn say(&mut self, level: LogLevel, message: String) {
        (self.log)(level, &message);
    }
}

impl Rescan for Folder {
    /// Whether `event` may change what the folder holds. Reads (ours included) and metadata
    /// changes do not; an error or a lost event queue does (the rescan sorts it out).
    fn relevant(&mut self, event: notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                let message = format!("watching {}: {e}; rescanning", self.dir.display());
                self.say(LogLevel::Warn, message);
                return true;
            }
        };
        if event.need_rescan() {
            return true;
        }
        let kind_matters = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
            _ => true,
        };
        kind_matters
            && event
                .paths
                .iter()
                .any(|p| p == &self.dir || app_name(p).is_some())
    }

    /// Compares the folder with what was seen last: deploys new and changed manifests,
    /// removes the apps whose file is gone.
    fn scan(&mut self) {
        let present = match self.list() {
            Ok(present) => present,
            Err(e) => {
                // Keep the apps: a folder that cannot be read now may be readable later, and
                // its files' removal, if that is what happened, came as events first.
                let message = format!("cannot read {}: {e}", self.dir.display());
                self.say(LogLevel::Error, message);
                return;
            }
        };
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|app| !present.contains(*app))
            .cloned()
            .collect();
        for app in gone {
            self.gone(&app);
        }
        for app in present {
            self.check(&app);
        }
    }
}

impl Folder {
    /// The app names of the manifest files in the folder.
    fn list(&self) -> io::Result<BTreeSet<String>> {
        let mut apps = BTreeSet::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            // `is_file` follows links: a link to a manifest counts.
            if let Some(app) = app_name(&path).filter(|_| path.is_file()) {
                apps.insert(app);
            }
        }
        Ok(apps)
    }

    fn file(&self, app: &str) -> PathBuf {
        self.dir.join(format!("{app}.json"))
    }

    fn gone(&mut self, app: &str) {
        let Some(known) = self.known.remove(app) else {
            return;
        };
        let file = self.file(app);
        if known.deployed.is_some() {
            self.say(
                LogLevel::Info,
                format!("{}: gone; removing app {app}", file.display()),
            );
            self.inbox.push(Input::Remove {
                app: app.to_owned(),
                origin: AppOrigin::Watched,
            });
        } else {
            self.say(LogLevel::Info, format!("{}: gone", file.display()));
        }
    }

    fn check(&mut self, app: &str) {
        let file = self.file(app);
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            // Removed since the listing: the next scan (its removal is an event) sees it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                let message = format!("{}: cannot read: {e}", file.display());
                self.say(LogLevel::Error, message);
                return;
            }
        };
        let hash = {
            let mut hasher = DefaultHasher::new();
            bytes.hash(&mut hasher);
            hasher.finish()
        };
        let known = self.known.entry(app.to_owned()).or_insert(Known {
            seen: None,
            deployed: None,
        });
        if known.seen == Some(hash) {
            return;
        }
        known.seen = Some(hash);
        let deployed = known.deployed;
        if deployed == Some(hash) {
            // Back to the content that runs, after a bad edit: nothing to do.
            let message = format!("{}: back to the running version", file.display());
            self.say(LogLevel::Info, message);
            return;
        }
        if let Err(e) = check_app_name(app) {
            let message = format!("{}: not deployed: {e}", file.display());
            self.say(LogLevel::Error, message);
            return;
        }
        match Manifest::parse(app, &bytes, Some(&self.dir)) {
            Ok(manifest) => {
                let verb = if deployed.is_some() {
                    "changed; redeploying"
                } else {
                    "deploying"
                };
                self.say(
                    LogLevel::Info,
                    format!("{}: {verb} app {app}", file.display()),
                );
                if let Some(known) = self.known.get_mut(app) {
                    known.deployed = Some(hash);
                }
                self.inbox.push(Input::Deploy {
                    manifest: Box::new(manifest),
                    origin: AppOrigin::Watched,
                });
            }
            Err(e) => {
                let problems: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
                let kept = if deployed.is_some() {
                    "the running version is kept"
                } else {
                    "not deployed"
                };
                let message = format!(
                    "{}: bad manifest for app {app}: {}; {kept}",
                    file.display(),
                    problems.join("; ")
                );
                self.say(LogLevel::Error, message);
            }
        }
    }
}

/// The app a path names: the stem of a `*.json` file whose name does not start with `.`.
fn app_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".json")?;
    (!name.starts_with('.') && !stem.is_empty()).then(|| stem.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_json_files_name_apps() {
        assert_eq!(app_name(Path::new("/d/echo.json")), Some("echo".into()));
        assert_eq!(app_name(Path::new("/d/a.b.json")), Some("a.b".into()));
        assert_eq!(app_name(Path::new("/d/.echo.json")), None);
        assert_eq!(app_name(Path::new("/d/.json")), None);
        assert_eq!(app_name(Path::new("/d/echo.json~")), None);
        assert_eq!(app_name(Path::new("/d/echo.json.swp")), None);
        assert_eq!(app_name(Path::new("/d/echo.txt")), None);
        assert_eq!(app_name(Path::new("/d")), None);
    }
}
