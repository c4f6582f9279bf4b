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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::driver::{Cx, Driver, DriverInput, Handover};
use super::io::{FsEvent, FsEventKind, Output, WatchError};
use crate::engine::ReplyEvent;
use crate::ids::WatchId;
use crate::manifest::keys::{resolve, value, Ctx, Obj, Problems};
use crate::manifest::{Task, TaskKind, DEFAULT_DEBOUNCE};
use crate::process::LogLevel;
use crate::time::after;
use crate::timers::TimerHandle;

/// The most distinct paths one batch holds; one more change submits the batch at once.
pub const MAX_BATCH: usize = 10_000;

/// The first wait before asking again for a watch that failed.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The longest wait between two attempts at a failing watch.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// Timer tokens.
const WINDOW: u64 = 0;
const RETRY: u64 = 1;

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
pub(super) struct Monitor {
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

/// filesystem-monitor: `path` (required; relative to the manifest's folder), `recursive`,
/// `debounce` (ms).
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::FilesystemMonitor {
        path: o
            .req("path", p, |v, at, p| {
                resolve(value::non_empty(v, at, p)?, ctx.base_dir, at, p)
            })
            .unwrap_or_default(),
        recursive: o.bool("recursive", p).unwrap_or(false),
        debounce: o.ms("debounce", p).unwrap_or(DEFAULT_DEBOUNCE),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::FilesystemMonitor {
        path,
        recursive,
        debounce,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(Monitor {
        path: path.clone(),
        recursive: *recursive,
        debounce: *debounce,
        watching: false,
        batch: Batch::new(),
        window: None,
        retry: None,
        backoff: FIRST_RETRY,
    }))
}

impl Driver for Monitor {
    /// Asks for the watch.
    fn start(&mut self, cx: &mut Cx<'_>) {
        self.watch(cx);
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        match input {
            DriverInput::FsEvents { watch, events } => self.events(cx, watch, events),
            DriverInput::WatchFailed { watch, error } => self.failed(cx, watch, error),
            DriverInput::Timer { token: WINDOW } => {
                self.window = None;
                self.window_ends(cx);
            }
            DriverInput::Timer { token: RETRY } => {
                self.retry = None;
                if cx.accepting() && !self.watching {
                    self.watch(cx);
                }
            }
            _ => {}
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, _token: u64, event: ReplyEvent) {
        cx.publish_reply(event);
    }

    /// The new version's watch is out (it started first): this one is dropped, and the open
    /// batch moves, so no change falls between the two watches.
    fn hand_over(&mut self, cx: &mut Cx<'_>) -> Option<Handover> {
        self.stop(cx);
        Some(Box::new(std::mem::take(&mut self.batch)))
    }

    fn take_over(&mut self, cx: &mut Cx<'_>, from: Handover) {
        if let Ok(batch) = from.downcast::<Batch>() {
            self.collect(cx, *batch);
        }
    }

    /// Drops the watch and what was collected.
    fn stop(&mut self, cx: &mut Cx<'_>) {
        if self.watching {
            self.watching = false;
            let watch = cx.watch_id();
            cx.out().push_back(Output::Unwatch { watch });
        }
        cx.cancel_timer(&mut self.window);
        cx.cancel_timer(&mut self.retry);
    }
}

impl Monitor {
    fn watch(&mut self, cx: &mut Cx<'_>) {
        self.watching = true;
        let watch = cx.watch_id();
        cx.out().push_back(Output::WatchPath {
            watch,
            path: self.path.clone(),
            recursive: self.recursive,
        });
    }

    /// Changes from the watch, or from the previous version's during a hand-over.
    fn events(&mut self, cx: &mut Cx<'_>, watch: WatchId, events: Vec<FsEvent>) {
        let mut batch = Batch::new();
        for event in events {
            coalesce(&mut batch, event);
        }
        if watch == cx.watch_id() {
            if !self.watching {
                return;
            }
            // Events flow again: the next failure starts its backoff afresh.
            self.backoff = FIRST_RETRY;
        }
        self.collect(cx, batch);
    }

    /// The watch failed: log it and ask again after a backoff.
    fn failed(&mut self, cx: &mut Cx<'_>, watch: WatchId, error: WatchError) {
        if watch != cx.watch_id() || !self.watching {
            return;
        }
        self.watching = false;
        let wait = self.backoff;
        self.backoff = (wait * 2).min(MAX_RETRY);
        let message = format!(
            "{}/{}: cannot watch {}: {error}; trying again in {} s",
            cx.app_name(),
            cx.task_name(),
            self.path.display(),
            wait.as_secs_f64()
        );
        cx.cancel_timer(&mut self.retry);
        self.retry = cx.arm(after(cx.now.mono, wait), RETRY);
        cx.log(LogLevel::Error, message);
    }

    /// Adds changes to the batch, opening a window if none is.
    fn collect(&mut self, cx: &mut Cx<'_>, changes: Batch) {
        for (path, change) in changes {
            self.batch
                .entry(path)
                .and_modify(|c| *c = c.then(change))
                .or_insert(change);
            if self.window.is_none() {
                self.window = cx.arm(after(cx.now.mono, self.debounce), WINDOW);
            }
            if self.batch.len() >= MAX_BATCH {
                self.window_ends(cx);
            }
        }
    }

    /// The window closed (or the batch is full): the batch becomes a job.
    fn window_ends(&mut self, cx: &mut Cx<'_>) {
        cx.cancel_timer(&mut self.window);
        let batch = std::mem::take(&mut self.batch);
        if batch.values().all(|c| c.kind().is_none()) {
            return;
        }
        let what = format!("{} change(s) dropped: job", batch.len());
        cx.submit_published(0, vec![Bytes::from(body(&batch))], &what);
    }
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
