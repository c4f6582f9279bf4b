//! filesystem-monitor: changes under a path, batched into jobs, replies published.
//!
//! The runtime watches (`Output::WatchPath`) and reports what it sees (`Input::FsEvents`);
//! everything else happens here, with time as an input:
//!
//! - **Batching.** The first change after a quiet time opens a window of `debounce`; every
//!   change until it closes joins the batch (later changes do not extend it, so a folder
//!   written to without a pause still produces a job every `debounce`). When it closes, the
//!   batch becomes one job whose body is a JSON list of `{"path", "kind"}`, sorted by path.
//!   A batch that reaches [`MAX_BATCH`] paths becomes a job at once, so memory and bodies stay
//!   bounded under a flood.
//! - **Coalescing.** Per path, only whether it existed before the batch's first change and
//!   whether it exists after its last one count: absent then present is `created`, present
//!   then absent `removed`, present both times `modified` (a file replaced counts as
//!   modified), absent both times nothing (a temporary file).
//! - **Lifetime.** Watches are asked for when the app starts and dropped when it is removed.
//!   On a redeploy the new version watches under its own ids; once it is up, the old
//!   version's batch moves to the new version's task of the same name and the old watches are
//!   dropped. Events the old watches still report are forwarded the same way: a change seen by
//!   both watches during the hand-over is coalesced, not doubled.
//! - **Failures.** A watch that cannot be set up, or broke, is logged and asked for again after
//!   a backoff (1 s, doubling up to a minute; reset by the next event); the app keeps running,
//!   since a path may become watchable later (a mount, a permission fixed).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::app::{App, AppTimer};
use super::io::{FsEvent, FsEventKind, Output};
use super::route::Route;
use super::Node;
use crate::engine::{AppState, JobPolicy, JobRequest, ReplyMode};
use crate::ids::{AppId, WatchId};
use crate::manifest::TaskKind;
use crate::process::LogLevel;
use crate::time::{after, Now};
use crate::timers::TimerHandle;

/// The most distinct paths one batch holds; one more change submits the batch at once.
pub const MAX_BATCH: usize = 10_000;

/// The first wait before asking again for a watch that failed.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The longest wait between two attempts at a failing watch.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// What a batch knows of one path: whether it existed before the batch's first change to it,
/// and whether it exists after the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Change {
    existed: bool,
    exists: bool,
}

impl Change {
    fn of(kind: FsEventKind) -> Change {
        Change {
            existed: kind != FsEventKind::Created,
            exists: kind != FsEventKind::Removed,
        }
    }

    /// This change followed by `later`.
    fn then(self, later: Change) -> Change {
        Change {
            existed: self.existed,
            exists: later.exists,
        }
    }

    /// What the batch reports for the path, if anything.
    pub(super) fn kind(self) -> Option<FsEventKind> {
        match (self.existed, self.exists) {
            (false, false) => None,
            (false, true) => Some(FsEventKind::Created),
            (true, false) => Some(FsEventKind::Removed),
            (true, true) => Some(FsEventKind::Modified),
        }
    }
}

/// Changes by path, coalesced.
pub(super) type Batch = BTreeMap<PathBuf, Change>;

/// Adds `event` to `batch`, coalesced with what the batch holds for its path.
pub(super) fn coalesce(batch: &mut Batch, event: FsEvent) {
    let change = Change::of(event.kind);
    batch
        .entry(event.path)
        .and_modify(|c| *c = c.then(change))
        .or_insert(change);
}

/// A batch as a job's body: `[{"path": ..., "kind": ...}, ...]`, sorted by path. Paths that
/// are not UTF-8 are written with U+FFFD in place of the bytes that are not.
pub(super) fn body(batch: &Batch) -> Vec<u8> {
    let list: Vec<serde_json::Value> = batch
        .iter()
        .filter_map(|(path, change)| {
            let kind = change.kind()?;
            Some(serde_json::json!({
                "path": path.to_string_lossy(),
                "kind": kind.name(),
            }))
        })
        .collect();
    serde_json::Value::Array(list).to_string().into_bytes()
}

/// One filesystem-monitor task of one app version.
#[derive(Debug)]
struct Monitor {
    path: PathBuf,
    recursive: bool,
    debounce: Duration,
    /// A `WatchPath` is out and neither failed nor dropped.
    watching: bool,
    batch: Batch,
    /// When the open batch is due, if one is open.
    window: Option<TimerHandle>,
    retry: Option<TimerHandle>,
    backoff: Duration,
}

/// An app version's filesystem monitors, by task index.
#[derive(Debug, Default)]
pub(super) struct Monitors {
    by_task: BTreeMap<usize, Monitor>,
}

impl App {
    fn watch_id(&self, task: usize) -> WatchId {
        WatchId::new(self.engine.app_id(), task)
    }

    /// Asks for a watch per filesystem-monitor task; called when the app starts.
    pub(super) fn start_fs_tasks(&mut self, out: &mut VecDeque<Output>) {
        for index in 0..self.manifest.tasks.len() {
            if let TaskKind::FilesystemMonitor {
                path,
                recursive,
                debounce,
            } = &self.manifest.tasks[index].kind
            {
                self.fs.by_task.insert(
                    index,
                    Monitor {
                        path: path.clone(),
                        recursive: *recursive,
                        debounce: *debounce,
                        watching: false,
                        batch: Batch::new(),
                        window: None,
                        retry: None,
                        backoff: FIRST_RETRY,
                    },
                );
                self.watch(index, out);
            }
        }
    }

    fn watch(&mut self, task: usize, out: &mut VecDeque<Output>) {
        let watch = self.watch_id(task);
        let Some(monitor) = self.fs.by_task.get_mut(&task) else {
            return;
        };
        monitor.watching = true;
        out.push_back(Output::WatchPath {
            watch,
            path: monitor.path.clone(),
            recursive: monitor.recursive,
        });
    }

    /// Drops every watch and what was collected; called when the app stops. Returns the open
    /// batches by task name, for a version that takes over.
    pub(super) fn stop_fs_tasks(&mut self, out: &mut VecDeque<Output>) -> Vec<(Arc<str>, Batch)> {
        let mut open = Vec::new();
        let tasks: Vec<usize> = self.fs.by_task.keys().copied().collect();
        for task in tasks {
            let watch = self.watch_id(task);
            let Some(monitor) = self.fs.by_task.get_mut(&task) else {
                continue;
            };
            if monitor.watching {
                monitor.watching = false;
                out.push_back(Output::Unwatch { watch });
            }
            self.timers.cancel_slot(&mut monitor.window);
            self.timers.cancel_slot(&mut monitor.retry);
            let batch = std::mem::take(&mut monitor.batch);
            if !batch.is_empty() {
                open.push((self.tasks[task].name.clone(), batch));
            }
        }
        open
    }

    /// Adds changes to task `task`'s batch, opening a window if none is.
    fn collect(&mut self, now: Now, task: usize, changes: impl IntoIterator<Item = Batch>) {
        for batch in changes {
            for (path, change) in batch {
                let Some(monitor) = self.fs.by_task.get_mut(&task) else {
                    return;
                };
                monitor
                    .batch
                    .entry(path)
                    .and_modify(|c| *c = c.then(change))
                    .or_insert(change);
                if monitor.window.is_none() {
                    let at = after(now.mono, monitor.debounce);
                    monitor.window = Some(self.timers.arm(at, AppTimer::FsWindow(task)));
                }
                if monitor.batch.len() >= MAX_BATCH {
                    self.fs_window_ends(now, task);
                }
            }
        }
    }

    /// Task `task`'s window closed (or its batch is full): its batch becomes a job.
    pub(super) fn fs_window_ends(&mut self, now: Now, task: usize) {
        let Some(monitor) = self.fs.by_task.get_mut(&task) else {
            return;
        };
        self.timers.cancel_slot(&mut monitor.window);
        let batch = std::mem::take(&mut monitor.batch);
        if batch.values().all(|c| c.kind().is_none()) {
            return;
        }
        let name = self.tasks[task].name.clone();
        let request = JobRequest {
            task,
            event: name.clone(),
            policy: JobPolicy::default(),
            reply: Route::Publish { task },
            mode: ReplyMode::Collect {
                limit: self.engine.config().max_message,
            },
            origin: None,
            body: Some(vec![Bytes::from(body(&batch))]),
        };
        if let Err(failure) = self.engine.submit(now.mono, request) {
            let message = format!(
                "{}/{name}: {} change(s) dropped: job refused: {failure}",
                self.name,
                batch.len()
            );
            self.pending_logs.push((LogLevel::Warn, message));
        }
    }

    /// The retry timer of task `task` fired: ask for its watch again.
    pub(super) fn fs_retry(&mut self, task: usize, out: &mut VecDeque<Output>) {
        let stopping = matches!(self.engine.state(), AppState::Stopping | AppState::Stopped);
        let Some(monitor) = self.fs.by_task.get_mut(&task) else {
            return;
        };
        monitor.retry = None;
        if !stopping && !self.retired && !monitor.watching {
            self.watch(task, out);
        }
    }
}

impl Node {
    /// Changes from a watch: into its task's batch. A retired version's watch still reporting
    /// during a hand-over feeds the serving version's task of the same name.
    pub(super) fn fs_events(&mut self, now: Now, watch: WatchId, events: Vec<FsEvent>) {
        let Some(app) = self.apps.get_mut(&watch.app()) else {
            return;
        };
        let Some(monitor) = app.fs.by_task.get_mut(&watch.task()) else {
            return;
        };
        let mut batch = Batch::new();
        for event in events {
            coalesce(&mut batch, event);
        }
        if app.retired {
            let name = app.tasks[watch.task()].name.clone();
            let serving = self.names.get(&*app.name).copied();
            if let Some(to) = serving.and_then(|id| self.apps.get_mut(&id)) {
                if let Some(task) = fs_task_named(to, &name) {
                    to.collect(now, task, [batch]);
                }
            }
            return;
        }
        if !monitor.watching {
            return;
        }
        // Events flow again: the next failure starts its backoff afresh.
        monitor.backoff = FIRST_RETRY;
        app.collect(now, watch.task(), [batch]);
    }

    /// A watch failed: log it and ask again after a backoff.
    pub(super) fn watch_failed(&mut self, now: Now, watch: WatchId, error: String) {
        let Some(app) = self.apps.get_mut(&watch.app()) else {
            return;
        };
        let task = watch.task();
        let Some(monitor) = app.fs.by_task.get_mut(&task) else {
            return;
        };
        if !monitor.watching {
            return;
        }
        monitor.watching = false;
        let wait = monitor.backoff;
        monitor.backoff = (wait * 2).min(MAX_RETRY);
        let message = format!(
            "{}/{}: cannot watch {}: {error}; trying again in {} s",
            app.name,
            app.tasks[task].name,
            monitor.path.display(),
            wait.as_secs_f64()
        );
        app.timers.cancel_slot(&mut monitor.retry);
        monitor.retry = Some(
            app.timers
                .arm(after(now.mono, wait), AppTimer::FsRetry(task)),
        );
        self.log(LogLevel::Error, message);
    }

    /// Version `new` is up in place of `old`: the old version's open batches join the new
    /// version's tasks of the same name, and its watches are dropped (after the new ones were
    /// asked for, so no change falls between them).
    pub(super) fn hand_over_watches(&mut self, now: Now, old: AppId, new: AppId) {
        let Some(previous) = self.apps.get_mut(&old) else {
            return;
        };
        let open = previous.stop_fs_tasks(&mut self.out);
        let Some(successor) = self.apps.get_mut(&new) else {
            return;
        };
        for (name, batch) in open {
            match fs_task_named(successor, &name) {
                Some(task) => successor.collect(now, task, [batch]),
                None => {
                    let message = format!(
                        "{}/{name}: {} change(s) dropped: the new version has no such \
                         filesystem-monitor",
                        successor.name,
                        batch.len()
                    );
                    successor.pending_logs.push((LogLevel::Warn, message));
                }
            }
        }
    }
}

/// The index of `app`'s filesystem-monitor task called `name`, if it has one.
fn fs_task_named(app: &App, name: &str) -> Option<usize> {
    app.fs
        .by_task
        .keys()
        .copied()
        .find(|&task| &*app.tasks[task].name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str, kind: FsEventKind) -> FsEvent {
        FsEvent {
            path: PathBuf::from(path),
            kind,
        }
    }

    fn kinds(events: &[FsEventKind]) -> Option<FsEventKind> {
        let mut batch = Batch::new();
        for &kind in events {
            coalesce(&mut batch, ev("/p", kind));
        }
        batch.get(&PathBuf::from("/p")).and_then(|c| c.kind())
    }

    #[test]
    fn coalescing_keeps_what_the_path_was_before_and_after() {
        use FsEventKind::*;
        assert_eq!(kinds(&[Created]), Some(Created));
        assert_eq!(kinds(&[Created, Modified, Modified]), Some(Created));
        assert_eq!(kinds(&[Created, Removed]), None);
        assert_eq!(kinds(&[Created, Removed, Created]), Some(Created));
        assert_eq!(kinds(&[Modified, Modified]), Some(Modified));
        assert_eq!(kinds(&[Modified, Removed]), Some(Removed));
        assert_eq!(kinds(&[Removed, Created]), Some(Modified));
        assert_eq!(kinds(&[Removed]), Some(Removed));
    }

    #[test]
    fn the_body_is_sorted_by_path_and_leaves_out_what_came_to_nothing() {
        let mut batch = Batch::new();
        coalesce(&mut batch, ev("/d/b", FsEventKind::Modified));
        coalesce(&mut batch, ev("/d/tmp", FsEventKind::Created));
        coalesce(&mut batch, ev("/d/a", FsEventKind::Created));
        coalesce(&mut batch, ev("/d/tmp", FsEventKind::Removed));
        let value: serde_json::Value = serde_json::from_slice(&body(&batch)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"path": "/d/a", "kind": "created"},
                {"path": "/d/b", "kind": "modified"},
            ])
        );
    }
}
