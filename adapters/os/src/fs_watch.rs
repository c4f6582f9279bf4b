//! The watches of filesystem-monitor tasks (`Output::WatchPath` / `Output::Unwatch`), on
//! `notify` (inotify on Linux). One thread owns every watch; each watch has a `notify` watcher
//! of its own whose callback hands events to that thread, which turns them into
//! `Input::FsEvents` (only for the watched path, and below it for a folder) and pushes them to
//! the node's [`Inbox`]. Batching and coalescing are the core's business, not this file's.
//!
//! What is watched, for a watched path `root`:
//! - an existing folder: the folder itself, recursively if asked;
//! - anything else (a file, or a path that does not exist yet): its nearest existing parent
//!   folder, non-recursively, with events filtered down to `root`. Watching a file's folder
//!   rather than the file keeps following it when an editor replaces it by a rename.
//!
//! After any event on `root` or one of its parents, the watch is set up again where it now
//! belongs: a folder that appears is watched itself (what it already holds is reported as
//! created, since it may have been filled before the watch began), one that goes away is
//! followed from its parent again. A folder created inside a recursive watch is scanned the
//! same way. A watch that cannot be set up, or whose events were lost (the kernel's queue
//! overflowed), is dropped and reported with `Input::WatchFailed`; the core asks again later.
//!
//! Each watch is an inotify instance (Linux allows 128 per user by default).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, TryRecvError};
use std::thread::JoinHandle;

use cocaine_core::ids::WatchId;
use cocaine_core::node::{FsEvent, FsEventKind, Input, WatchError};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::inbox::Inbox;

/// How often setting a watch up is retried at once when its folder appears or vanishes
/// meanwhile.
const ARM_ATTEMPTS: usize = 16;

/// The most entries reported for a folder that appears (a first scan is not a backup tool).
const MAX_SCAN: usize = 100_000;

enum Message {
    Watch {
        watch: WatchId,
        path: PathBuf,
        recursive: bool,
    },
    Unwatch {
        watch: WatchId,
    },
    Event {
        watch: WatchId,
        generation: u64,
        event: notify::Result<Event>,
    },
    Stop,
}

/// The thread that runs every filesystem watch of a node. Dropping it stops the thread and
/// every watch.
pub struct FsWatcher {
    messages: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl FsWatcher {
    /// Starts the thread; events go to `inbox`.
    pub fn start(inbox: Inbox) -> io::Result<FsWatcher> {
        let (messages, received) = mpsc::channel();
        let watches = Watches {
            inbox,
            messages: messages.clone(),
            next_generation: 1,
            by_id: HashMap::new(),
            pending: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("cocaine-fs-watch".to_owned())
            .spawn(move || watches.run(received))?;
        Ok(FsWatcher {
            messages,
            thread: Some(thread),
        })
    }

    /// Watches `path` as `watch` (replacing a watch of that id); reports through the inbox.
    pub fn watch(&self, watch: WatchId, path: PathBuf, recursive: bool) {
        let _ = self.messages.send(Message::Watch {
            watch,
            path,
            recursive,
        });
    }

    /// Stops `watch`; events it had not reported yet are dropped.
    pub fn unwatch(&self, watch: WatchId) {
        let _ = self.messages.send(Message::Unwatch { watch });
    }
}

impl Drop for FsWatcher {
    fn drop(&mut self) {
        let _ = self.messages.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One watch as the thread holds it.
struct Watch {
    /// The watched path, absolute.
    root: PathBuf,
    recursive: bool,
    /// Tells this watch's events from those of a watcher it replaced.
    generation: u64,
    /// The folder `notify` watches now: `root`, or its nearest existing parent.
    anchor: PathBuf,
    /// Whether `root` existed when the watch was last set up.
    root_existed: bool,
    // Kept for its side effect: events flow while it lives.
    _watcher: RecommendedWatcher,
}

struct Watches {
    inbox: Inbox,
    /// For new watchers' callbacks.
    messages: mpsc::Sender<Message>,
    next_generation: u64,
    by_id: HashMap<WatchId, Watch>,
    /// Events not pushed yet, by watch, in order: pushed once the thread has nothing more to
    /// read, so a burst wakes the node once.
    pending: Vec<(WatchId, Vec<FsEvent>)>,
}

impl Watches {
    fn run(mut self, messages: mpsc::Receiver<Message>) {
        loop {
            let message = match messages.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Empty) => {
                    self.flush();
                    match messages.recv() {
                        Ok(message) => message,
                        Err(_) => return,
                    }
                }
                Err(TryRecvError::Disconnected) => return,
            };
            match message {
                Message::Watch {
                    watch,
                    path,
                    recursive,
                } => self.watch(watch, path, recursive),
                Message::Unwatch { watch } => {
                    self.by_id.remove(&watch);
                    self.pending.retain(|(w, _)| *w != watch);
                }
                Message::Event {
                    watch,
                    generation,
                    event,
                } => self.event(watch, generation, event),
                Message::Stop => return,
            }
        }
    }

    fn flush(&mut self) {
        for (watch, events) in self.pending.drain(..) {
            self.inbox.push(Input::FsEvents { watch, events });
        }
    }

    fn report(&mut self, watch: WatchId, event: FsEvent) {
        match self.pending.iter_mut().find(|(w, _)| *w == watch) {
            Some((_, events)) => events.push(event),
            None => self.pending.push((watch, vec![event])),
        }
    }

    /// Drops `watch` and tells the node, after the events it reported before.
    fn fail(&mut self, watch: WatchId, error: WatchError) {
        self.by_id.remove(&watch);
        self.flush();
        self.inbox.push(Input::WatchFailed { watch, error });
    }

    fn watch(&mut self, watch: WatchId, path: PathBuf, recursive: bool) {
        let root = std::path::absolute(&path).unwrap_or(path);
        self.by_id.remove(&watch);
        self.pending.retain(|(w, _)| *w != watch);
        match self.arm(watch, &root, recursive) {
            Ok(armed) => {
                self.by_id.insert(watch, armed);
            }
            Err(error) => self.fail(watch, WatchError::Other(error)),
        }
    }

    /// Sets a watcher up where `root` is best watched from now.
    fn arm(&mut self, watch: WatchId, root: &Path, recursive: bool) -> Result<Watch, String> {
        let mut last = String::new();
        for _ in 0..ARM_ATTEMPTS {
            let generation = self.next_generation;
            self.next_generation += 1;
            let root_existed = root.symlink_metadata().is_ok();
            let (anchor, mode) = if root.is_dir() {
                let mode = if recursive {
                    RecursiveMode::Recursive
                } else {
                    RecursiveMode::NonRecursive
                };
                (root.to_path_buf(), mode)
            } else {
                (nearest_folder(root), RecursiveMode::NonRecursive)
            };
            let events = self.messages.clone();
            let mut watcher = notify::recommended_watcher(move |event| {
                let _ = events.send(Message::Event {
                    watch,
                    generation,
                    event,
                });
            })
            .map_err(|e| e.to_string())?;
            match watcher.watch(&anchor, mode) {
                // The root appeared (or went) between looking and watching, unseen by this
                // watcher: look again. Later changes are events.
                Ok(()) if wanted_anchor(root) != anchor => last = "the path keeps changing".into(),
                Ok(()) => {
                    return Ok(Watch {
                        root: root.to_path_buf(),
                        recursive,
                        generation,
                        anchor,
                        root_existed,
                        _watcher: watcher,
                    })
                }
                // The folder went away between looking and watching: look again.
                Err(e) if !anchor.is_dir() => last = e.to_string(),
                Err(e) => return Err(format!("watching {}: {e}", anchor.display())),
            }
        }
        Err(last)
    }

    fn event(&mut self, watch: WatchId, generation: u64, event: notify::Result<Event>) {
        let Some(w) = self
            .by_id
            .get(&watch)
            .filter(|w| w.generation == generation)
        else {
            return;
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => return self.fail(watch, WatchError::Other(e.to_string())),
        };
        if event.need_rescan() {
            let error = "the kernel's event queue overflowed: changes were lost".to_owned();
            return self.fail(watch, WatchError::Overflow(error));
        }
        let (root, recursive, anchor) = (w.root.clone(), w.recursive, w.anchor.clone());
        let mut rearm = false;
        for (path, kind) in translate(&event) {
            // An event on the root or a parent of it may move where the root is watched from.
            rearm |= root.starts_with(&path);
            if !in_scope(&root, recursive, &path) {
                continue;
            }
            // A folder appearing inside a recursive watch may fill before it is watched.
            let scan = recursive && kind == FsEventKind::Created && path != root && path.is_dir();
            self.report(
                watch,
                FsEvent {
                    path: path.clone(),
                    kind,
                },
            );
            if scan {
                self.report_contents(watch, &path, true);
            }
        }
        if rearm && wanted_anchor(&root) != anchor {
            self.rearm(watch);
        }
    }

    /// Sets `watch` up again where its root now belongs, reporting the root's appearance (and
    /// what a folder holds already) or disappearance.
    fn rearm(&mut self, watch: WatchId) {
        let Some(old) = self.by_id.remove(&watch) else {
            return;
        };
        let armed = match self.arm(watch, &old.root, old.recursive) {
            Ok(armed) => armed,
            Err(error) => return self.fail(watch, WatchError::Other(error)),
        };
        let (root, recursive) = (armed.root.clone(), armed.recursive);
        let exists = root.symlink_metadata().is_ok();
        self.by_id.insert(watch, armed);
        if exists && !old.root_existed {
            self.report(
                watch,
                FsEvent {
                    path: root.clone(),
                    kind: FsEventKind::Created,
                },
            );
        } else if !exists && old.root_existed {
            self.report(
                watch,
                FsEvent {
                    path: root.clone(),
                    kind: FsEventKind::Removed,
                },
            );
        }
        if exists && root.is_dir() {
            self.report_contents(watch, &root, recursive);
        }
    }

    /// Reports what `folder` holds as created (below it too, if `recursive`).
    fn report_contents(&mut self, watch: WatchId, folder: &Path, recursive: bool) {
        let mut stack = vec![folder.to_path_buf()];
        let mut seen = 0;
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_SCAN {
                    return;
                }
                let path = entry.path();
                if recursive && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path.clone());
                }
                self.report(
                    watch,
                    FsEvent {
                        path,
                        kind: FsEventKind::Created,
                    },
                );
            }
        }
    }
}

/// Whether a change at `path` belongs to a watch of `root`: the root itself, and what is in
/// it (at any depth if `recursive`).
pub fn in_scope(root: &Path, recursive: bool, path: &Path) -> bool {
    if recursive {
        path.starts_with(root)
    } else {
        path == root || path.parent() == Some(root)
    }
}

/// Where `root` is best watched from now: itself if it is a folder, else its nearest
/// existing parent folder.
fn wanted_anchor(root: &Path) -> PathBuf {
    if root.is_dir() {
        root.to_path_buf()
    } else {
        nearest_folder(root)
    }
}

/// The nearest existing folder above `path` (`/` at worst).
fn nearest_folder(path: &Path) -> PathBuf {
    let mut at = path.parent();
    while let Some(dir) = at {
        if dir.is_dir() {
            return dir.to_path_buf();
        }
        at = dir.parent();
    }
    PathBuf::from("/")
}

/// What a `notify` event means in the core's terms: a rename is a removal of the old path and
/// a creation of the new one; reads and other noise mean nothing.
fn translate(event: &Event) -> Vec<(PathBuf, FsEventKind)> {
    let all = |kind| event.paths.iter().map(|p| (p.clone(), kind)).collect();
    match event.kind {
        EventKind::Create(_) => all(FsEventKind::Created),
        EventKind::Remove(_) => all(FsEventKind::Removed),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => all(FsEventKind::Removed),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => all(FsEventKind::Created),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut out = Vec::new();
            if let Some(from) = event.paths.first() {
                out.push((from.clone(), FsEventKind::Removed));
            }
            if let Some(to) = event.paths.get(1) {
                out.push((to.clone(), FsEventKind::Created));
            }
            out
        }
        // A rename of unknown direction: where the path is now says which.
        EventKind::Modify(ModifyKind::Name(_)) => event
            .paths
            .iter()
            .map(|p| {
                let kind = if p.symlink_metadata().is_ok() {
                    FsEventKind::Created
                } else {
                    FsEventKind::Removed
                };
                (p.clone(), kind)
            })
            .collect(),
        EventKind::Modify(_) | EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            all(FsEventKind::Modified)
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::tests::wait;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    #[test]
    fn scope_is_the_root_and_what_it_holds() {
        let root = Path::new("/d/in");
        assert!(in_scope(root, false, Path::new("/d/in")));
        assert!(in_scope(root, false, Path::new("/d/in/a")));
        assert!(!in_scope(root, false, Path::new("/d/in/a/b")));
        assert!(in_scope(root, true, Path::new("/d/in/a/b")));
        assert!(!in_scope(root, true, Path::new("/d/input")));
        assert!(!in_scope(root, true, Path::new("/d")));
    }

    #[test]
    fn renames_are_a_removal_and_a_creation() {
        let event = Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path("/d/a".into())
            .add_path("/d/b".into());
        assert_eq!(
            translate(&event),
            vec![
                ("/d/a".into(), FsEventKind::Removed),
                ("/d/b".into(), FsEventKind::Created)
            ]
        );
        let read = Event::new(EventKind::Access(AccessKind::Open(
            notify::event::AccessMode::Read,
        )))
        .add_path("/d/a".into());
        assert!(translate(&read).is_empty());
    }

    /// Collects what the watcher reports, coalesced as the core does (whether each path
    /// existed before its first event and after its last), until `done` holds or the deadline
    /// passes.
    fn collect_until(
        inbox: &Inbox,
        done: impl Fn(&BTreeMap<PathBuf, FsEventKind>) -> bool,
    ) -> BTreeMap<PathBuf, FsEventKind> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut states: BTreeMap<PathBuf, (bool, bool)> = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        while !done(&kinds) && Instant::now() < deadline {
            for input in wait(inbox, deadline) {
                match input {
                    Input::FsEvents { events, .. } => {
                        for e in events {
                            let exists = e.kind != FsEventKind::Removed;
                            let existed = e.kind != FsEventKind::Created;
                            states.entry(e.path).or_insert((existed, exists)).1 = exists;
                        }
                    }
                    Input::WatchFailed { error, .. } => panic!("watch failed: {error}"),
                    _ => {}
                }
            }
            kinds = states
                .iter()
                .filter_map(|(path, state)| {
                    let kind = match state {
                        (false, false) => return None,
                        (false, true) => FsEventKind::Created,
                        (true, false) => FsEventKind::Removed,
                        (true, true) => FsEventKind::Modified,
                    };
                    Some((path.clone(), kind))
                })
                .collect();
        }
        kinds
    }

    /// Waits until every watch asked for so far is up: the thread handles requests in order,
    /// so once a probe watch asked for after them reports, they are set up.
    fn settle(watcher: &FsWatcher, inbox: &Inbox, dir: &Path, n: u64) {
        let probe = dir.join(format!("probe{n}"));
        watcher.watch(WatchId(1000 + n), probe.clone(), false);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Written until seen: the first write may come before the probe's watch is up.
        loop {
            std::fs::write(&probe, b"x").unwrap();
            let seen = wait(inbox, Instant::now() + Duration::from_millis(50));
            let hit = seen
                .iter()
                .any(|i| matches!(i, Input::FsEvents { watch, .. } if *watch == WatchId(1000 + n)));
            if hit {
                break;
            }
            assert!(Instant::now() < deadline, "the probe watch never reported");
        }
        watcher.unwatch(WatchId(1000 + n));
    }

    #[test]
    fn a_folder_that_does_not_exist_yet_is_followed_from_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("later/inbox");
        let inbox = Inbox::new().unwrap();
        let watcher = FsWatcher::start(inbox.clone()).unwrap();
        watcher.watch(WatchId(1), root.clone(), false);
        settle(&watcher, &inbox, dir.path(), 1);
        // Outside the watched path: never reported.
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a"), b"1").unwrap();
        let seen = collect_until(&inbox, |s| s.contains_key(&root.join("a")));
        assert_eq!(seen.get(&root), Some(&FsEventKind::Created), "{seen:?}");
        assert_eq!(seen.get(&root.join("a")), Some(&FsEventKind::Created));
        assert!(!seen.keys().any(|p| !p.starts_with(&root)), "{seen:?}");
        // Now watched itself: a change inside is seen; one below is not (not recursive).
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/deep"), b"x").unwrap();
        std::fs::write(root.join("a"), b"2").unwrap();
        std::fs::remove_file(root.join("a")).unwrap();
        let seen = collect_until(&inbox, |s| {
            s.get(&root.join("a")) == Some(&FsEventKind::Removed)
        });
        assert_eq!(seen.get(&root.join("a")), Some(&FsEventKind::Removed));
        assert!(!seen.contains_key(&root.join("sub/deep")), "{seen:?}");
        // Removed and made again: followed from the parent, then watched again.
        std::fs::remove_dir_all(&root).unwrap();
        let seen = collect_until(&inbox, |s| s.get(&root) == Some(&FsEventKind::Removed));
        assert_eq!(seen.get(&root), Some(&FsEventKind::Removed));
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("b"), b"1").unwrap();
        let seen = collect_until(&inbox, |s| s.contains_key(&root.join("b")));
        assert_eq!(seen.get(&root.join("b")), Some(&FsEventKind::Created));
        drop(watcher);
    }

    #[test]
    fn a_recursive_path_made_at_once_with_its_contents_sees_later_changes() {
        for _ in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("not/yet");
            let inbox = Inbox::new().unwrap();
            let watcher = FsWatcher::start(inbox.clone()).unwrap();
            watcher.watch(WatchId(1), root.clone(), true);
            settle(&watcher, &inbox, dir.path(), 1);
            std::fs::create_dir(dir.path().join("not")).unwrap();
            std::fs::write(dir.path().join("not/beside"), b"x").unwrap();
            std::fs::create_dir(&root).unwrap();
            std::fs::create_dir(root.join("a")).unwrap();
            let file = root.join("a/file.txt");
            std::fs::write(&file, b"x").unwrap();
            let seen = collect_until(&inbox, |s| s.contains_key(&file));
            assert_eq!(seen.get(&file), Some(&FsEventKind::Created), "{seen:?}");
            // The folder's scan and the watch may both report the file: let the second
            // report come before the next change.
            settle(&watcher, &inbox, dir.path(), 2);
            std::fs::write(&file, b"y").unwrap();
            let seen = collect_until(&inbox, |s| s.get(&file) == Some(&FsEventKind::Modified));
            assert_eq!(seen.get(&file), Some(&FsEventKind::Modified), "{seen:?}");
        }
    }

    #[test]
    fn a_watched_file_is_followed_across_replacement_and_recursive_folders_see_deep_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.txt");
        std::fs::write(&file, b"1").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        let inbox = Inbox::new().unwrap();
        let watcher = FsWatcher::start(inbox.clone()).unwrap();
        watcher.watch(WatchId(1), file.clone(), false);
        watcher.watch(WatchId(2), tree.clone(), true);
        settle(&watcher, &inbox, dir.path(), 1);
        // Replaced by a rename, as editors do; then written in place.
        let tmp = dir.path().join("config.txt.tmp");
        std::fs::write(&tmp, b"2").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/c"), b"x").unwrap();
        let seen = collect_until(&inbox, |s| {
            s.contains_key(&file) && s.contains_key(&tree.join("a/b/c"))
        });
        assert_eq!(seen.get(&file), Some(&FsEventKind::Created), "{seen:?}");
        assert!(!seen.contains_key(&tmp), "{seen:?}");
        assert_eq!(seen.get(&tree.join("a/b/c")), Some(&FsEventKind::Created));
        std::fs::write(&file, b"3").unwrap();
        let seen = collect_until(&inbox, |s| s.contains_key(&file));
        assert_eq!(seen.get(&file), Some(&FsEventKind::Modified), "{seen:?}");
        // Unwatched: nothing more comes.
        watcher.unwatch(WatchId(1));
        watcher.unwatch(WatchId(2));
        let probe = dir.path().join("probe9");
        watcher.watch(WatchId(9), probe.clone(), false);
        settle(&watcher, &inbox, dir.path(), 2);
        std::fs::write(&file, b"4").unwrap();
        std::fs::write(&probe, b"y").unwrap();
        let seen = collect_until(&inbox, |s| s.contains_key(&probe));
        assert!(!seen.contains_key(&file), "{seen:?}");
    }
}
