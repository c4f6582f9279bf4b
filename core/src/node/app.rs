//! One app version inside the node: its manifest, engine, phase, drivers and endpoints.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::apps::Mark;
use super::control::Requester;
use super::driver::Driver;
use super::io::{AppOrigin, Output};
use super::route::Route;
use super::{publication, NodeConfig};
use crate::engine::{Engine, EngineEvent, WorkerEvent};
use crate::ids::{AppId, EndpointId};
use crate::manifest::Manifest;
use crate::process::LogLevel;
use crate::time::Now;
use crate::timers::Timers;

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for this many of its own binds; it starts when none is left.
    Binding { unbound: usize },
    /// A successor whose endpoints are up, waiting for its first worker to be ready before
    /// it takes over.
    AwaitingWorker,
    /// Serving: drivers started, timers armed.
    Running,
    /// Replaced by a newer version: finishing its running jobs, then gone without a word.
    Retired,
    /// Removed (deleted, its file gone, the node shutting down): stopping, and no longer
    /// visible by name.
    Removed,
    /// Could not start: torn down without an `AppStopped`.
    Failed,
}

/// What an app-level timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppTimer {
    /// Time to publish the app's stats.
    Stats,
    /// A driver's timer, by its own token.
    Driver { task: usize, token: u64 },
}

/// One task of a version: its name, endpoint and driver.
#[derive(Debug)]
pub(super) struct TaskSlot {
    pub name: Arc<str>,
    pub endpoint: Option<EndpointId>,
    /// Out of its slot only while one of its methods runs.
    pub driver: Option<Box<dyn Driver>>,
    /// After a hand-over: the successor's task that took this one's state over.
    pub handed_to: Option<usize>,
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
    pub phase: Phase,
    pub timers: Timers<AppTimer>,
    /// Publications dropped because the app has no pubsub endpoint.
    pub dropped_publications: u64,
    /// For a successor: the version it replaces once it is up.
    pub replaces: Option<AppId>,
    /// For a retired version: the version that took over from it.
    pub successor: Option<AppId>,
    /// For a successor: the endpoints it takes over from the version it replaces, with the
    /// task (or the pubsub, `None`) each serves in this version.
    pub inherited: Vec<(EndpointId, Option<usize>)>,
    /// Control requests answered once this version is up (or could not start).
    pub waiters: Vec<Requester>,
    /// Where the node's index of deadlines has this version (`apps.rs`).
    pub mark: Mark,
}

impl App {
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.engine.poll_timeout(), self.timers.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn started(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Binding { .. } | Phase::AwaitingWorker | Phase::Failed
        )
    }

    pub fn publish_event(
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
