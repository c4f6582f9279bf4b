//! One app inside the node: its manifest, engine, task state and endpoints; and the node's
//! handling of apps coming and going.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::control::Requester;
use super::cron_tasks::CronTasks;
use super::io::{AppOrigin, Output};
use super::native_server::Sessions;
use super::route::Route;
use super::{fs_tasks, publication, spawn, NodeConfig};
use crate::engine::{Engine, EngineEvent, EngineOutput, WorkerEvent};
use crate::ids::{AppId, ConnId, EndpointId};
use crate::manifest::Manifest;
use crate::process::LogLevel;
use crate::time::after;
use crate::time::Now;
use crate::timers::{TimerHandle, Timers};

/// What an app-level timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppTimer {
    /// A timer task is due.
    Task(usize),
    /// A cron task is due (`cron_tasks.rs`).
    Cron(usize),
    /// Time to publish the app's stats.
    Stats,
    /// A filesystem-monitor's batch is due.
    FsWindow(usize),
    /// Time to ask again for a filesystem-monitor's watch that failed.
    FsRetry(usize),
}

/// Per-task state the node keeps.
#[derive(Debug)]
pub(super) struct TaskSlot {
    pub name: Arc<str>,
    pub endpoint: Option<EndpointId>,
    pub timer: Option<TimerHandle>,
    /// For recurring timers: the grid's next point.
    pub next_due: Option<Instant>,
}

/// One version of an app. During a redeploy two exist under one name: the one serving and
/// its successor, which takes over once its own endpoints are bound (see `lifecycle.rs`).
#[derive(Debug)]
pub(super) struct App {
    pub name: Arc<str>,
    pub origin: AppOrigin,
    /// The store's revision this version runs from (apps of the store only).
    pub revision: Option<u64>,
    pub manifest: Manifest,
    pub engine: Engine<Route>,
    pub tasks: Vec<TaskSlot>,
    pub pubsub: Option<EndpointId>,
    pub endpoints: Vec<EndpointId>,
    /// Binds not yet confirmed; the app starts its timers once this reaches zero.
    pub unbound: usize,
    pub started: bool,
    /// Set when the app could not start; it is torn down without an `AppStopped`.
    pub failed: bool,
    pub timers: Timers<AppTimer>,
    /// The cron tasks' schedules and runs.
    pub cron: CronTasks,
    /// Publications dropped because the app has no pubsub endpoint.
    pub dropped_publications: u64,
    /// Log lines from the app's own drivers, carried out with the engine's outputs.
    pub pending_logs: Vec<(LogLevel, String)>,
    /// For a successor: the version it replaces once it is up.
    pub replaces: Option<AppId>,
    /// For a successor: the endpoints it takes over from the version it replaces, with the
    /// task (or the pubsub, `None`) each serves in this version.
    pub inherited: Vec<(EndpointId, Option<usize>)>,
    /// Replaced by a newer version: finishing its running jobs, then gone without a word.
    pub retired: bool,
    /// Removed (deleted, or its file gone): stopping, and no longer visible by name.
    pub removed: bool,
    /// A successor whose endpoints are up, waiting for its first worker to be ready before it
    /// takes over.
    pub awaiting_worker: bool,
    /// Control requests answered once this version is up (or could not start).
    pub waiters: Vec<Requester>,
    /// Manual-scheduler jobs whose outcome was delivered, for the node to drop from the store.
    pub finished_schedules: Vec<Arc<str>>,
    /// Filesystem-monitor tasks: their watches and open batches.
    pub fs: fs_tasks::Monitors,
    /// Reply events for raw-server connections (held by the node), for the node to write.
    pub raw_replies: Vec<(ConnId, u64, crate::engine::ReplyEvent)>,
}

impl App {
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.engine.poll_timeout(), self.timers.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn fire_timers(&mut self, now: Now, config: &NodeConfig, out: &mut VecDeque<Output>) {
        self.engine.handle_timeout(now.mono);
        while let Some((_, timer)) = self.timers.pop_due(now.mono) {
            match timer {
                AppTimer::Task(task) => self.timer_task_due(now, task),
                AppTimer::FsWindow(task) => self.fs_window_ends(now, task),
                AppTimer::FsRetry(task) => self.fs_retry(task, out),
                AppTimer::Cron(task) => self.cron_due(now, task),
                AppTimer::Stats => {
                    if let Some(pubsub) = &self.manifest.pubsub {
                        let at = after(now.mono, pubsub.interval);
                        self.timers.arm(at, AppTimer::Stats);
                    }
                    let stats = serde_json::to_value(self.engine.info()).unwrap_or(Value::Null);
                    self.publish(now, config, out, "engine", "stats", &stats);
                }
            }
        }
    }

    /// Starts what runs once every endpoint is up: timers and stats.
    pub fn start(&mut self, now: Now, out: &mut VecDeque<Output>) {
        self.started = true;
        out.push_back(Output::AppStarted {
            app: self.name.to_string(),
        });
        out.push_back(Output::Log {
            level: LogLevel::Info,
            message: format!("{}: started (version {})", self.name, self.manifest.version),
        });
        if let Some(pubsub) = &self.manifest.pubsub {
            self.timers
                .arm(after(now.mono, pubsub.interval), AppTimer::Stats);
        }
        self.start_timer_tasks(now);
        self.start_fs_tasks(out);
        self.start_cron_tasks(now);
    }

    /// Carries the engine's outputs out. Returns true once the engine has stopped.
    pub fn drain(
        &mut self,
        now: Now,
        config: &NodeConfig,
        sessions: &mut Sessions,
        out: &mut VecDeque<Output>,
    ) -> bool {
        let mut stopped = false;
        for (level, message) in self.pending_logs.drain(..) {
            out.push_back(Output::Log { level, message });
        }
        while let Some(output) = self.engine.poll_output() {
            match output {
                EngineOutput::Reply { reply, event } => {
                    self.deliver(now, config, sessions, out, reply, event)
                }
                EngineOutput::Spawn { worker } => {
                    out.push_back(Output::Spawn(spawn::spec(config, &self.manifest, worker)))
                }
                EngineOutput::Kill { worker, signal } => {
                    out.push_back(Output::Kill { worker, signal })
                }
                EngineOutput::ToWorker { worker, bytes } => {
                    out.push_back(Output::ToWorker { worker, bytes })
                }
                EngineOutput::Event(event) => self.publish_event(now, config, out, event),
                EngineOutput::Log { level, message } => {
                    out.push_back(Output::Log { level, message })
                }
                EngineOutput::Stopped => stopped = true,
            }
        }
        stopped
    }

    fn publish_event(
        &mut self,
        now: Now,
        config: &NodeConfig,
        out: &mut VecDeque<Output>,
        event: EngineEvent,
    ) {
        let (field, value) = match event {
            EngineEvent::Worker {
                id,
                pid,
                event,
                status,
                stderr,
            } => {
                let what = match (&event, &status) {
                    (WorkerEvent::Exited, Some(status)) => format!("exited ({status})"),
                    (WorkerEvent::Exited, None) => "could not start".to_owned(),
                    (WorkerEvent::Ready, _) => format!("ready (pid {})", pid.unwrap_or(0)),
                    (WorkerEvent::Spawned, _) => "spawned".to_owned(),
                };
                out.push_back(Output::Log {
                    level: LogLevel::Debug,
                    message: format!("{}: worker {id} {what}", self.name),
                });
                (
                    "worker",
                    serde_json::json!({"id": id.to_string(), "pid": pid, "event": event, "status": status, "stderr": stderr}),
                )
            }
            EngineEvent::Error { failure, task } => (
                "error",
                serde_json::json!({"code": failure.code, "message": failure.message, "task": task}),
            ),
            EngineEvent::State { state, reason } => (
                "state",
                serde_json::json!({"state": state, "reason": reason}),
            ),
        };
        self.publish(now, config, out, "engine", field, &value);
    }

    /// Publishes one field on the app's pubsub, or counts it as dropped when there is none.
    pub fn publish(
        &mut self,
        now: Now,
        config: &NodeConfig,
        out: &mut VecDeque<Output>,
        source: &str,
        field: &str,
        value: &Value,
    ) {
        let Some(endpoint) = self.pubsub else {
            self.dropped_publications += 1;
            return;
        };
        let topic =
            publication::envelope(&self.name, source, field, &config.hostname, now.unix_ms());
        let value = Bytes::from(value.to_string());
        out.push_back(Output::Publish {
            endpoint,
            topic,
            value,
        });
    }
}
