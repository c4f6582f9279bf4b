//! One app inside the node: its manifest, engine, task state and endpoints; and the node's
//! handling of apps coming and going.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::io::{Output, SocketKind};
use super::native_server::Sessions;
use super::route::Route;
use super::{publication, spawn, EndpointOwner, Node, NodeConfig};
use crate::engine::{Engine, EngineEvent, EngineOutput, WorkerEvent};
use crate::ids::{AppId, EndpointId};
use crate::manifest::endpoint::Role;
use crate::manifest::{Manifest, TaskKind};
use crate::process::LogLevel;
use crate::time::after;
use crate::time::Now;
use crate::timers::{TimerHandle, Timers};

/// What an app-level timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppTimer {
    /// A timer task is due.
    Task(usize),
    /// Time to publish the app's stats.
    Stats,
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

#[derive(Debug)]
pub(super) struct App {
    pub name: Arc<str>,
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
    pub sessions: Sessions,
    /// Publications dropped because the app has no pubsub endpoint.
    pub dropped_publications: u64,
    /// Log lines from the app's own drivers, carried out with the engine's outputs.
    pub pending_logs: Vec<(LogLevel, String)>,
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
    }

    /// Carries the engine's outputs out. Returns true once the engine has stopped.
    pub fn drain(&mut self, now: Now, config: &NodeConfig, out: &mut VecDeque<Output>) -> bool {
        let mut stopped = false;
        for (level, message) in self.pending_logs.drain(..) {
            out.push_back(Output::Log { level, message });
        }
        while let Some(output) = self.engine.poll_output() {
            match output {
                EngineOutput::Reply { reply, event } => {
                    self.deliver(now, config, out, reply, event)
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

impl Node {
    pub(super) fn deploy(&mut self, now: Now, manifest: Manifest) {
        let name = manifest.app.clone();
        if let Err(reason) = self.check_deployable(&manifest) {
            self.log(LogLevel::Error, format!("{name}: not deployed: {reason}"));
            self.out
                .push_back(Output::DeployFailed { app: name, reason });
            return;
        }
        let id = AppId(self.next_app);
        self.next_app += 1;
        let task_names: Vec<Arc<str>> = manifest
            .tasks
            .iter()
            .map(|t| Arc::from(t.name.as_str()))
            .collect();
        let app_name: Arc<str> = Arc::from(name.as_str());
        let engine = Engine::new(
            now.mono,
            id,
            app_name.clone(),
            manifest.engine.clone(),
            task_names.clone(),
        );
        let mut app = App {
            name: app_name,
            engine,
            tasks: task_names
                .into_iter()
                .map(|name| TaskSlot {
                    name,
                    endpoint: None,
                    timer: None,
                    next_due: None,
                })
                .collect(),
            pubsub: None,
            endpoints: Vec::new(),
            unbound: 0,
            started: false,
            failed: false,
            timers: Timers::new(),
            sessions: Sessions::default(),
            dropped_publications: 0,
            pending_logs: Vec::new(),
            manifest,
        };
        let mut binds = Vec::new();
        for (index, task) in app.manifest.tasks.iter().enumerate() {
            let bind = match &task.kind {
                TaskKind::NativeServer { endpoint, .. }
                | TaskKind::ZeromqServer { endpoint, .. } => {
                    Some((SocketKind::Router, endpoint.clone(), Vec::new()))
                }
                TaskKind::ZeromqSink { endpoint, .. } | TaskKind::NativeSink { endpoint, .. } => {
                    Some((SocketKind::Pull, endpoint.clone(), Vec::new()))
                }
                TaskKind::ZeromqSubscriber {
                    endpoint,
                    subscribe,
                    ..
                } => {
                    let prefixes = if subscribe.is_empty() {
                        vec![Bytes::new()]
                    } else {
                        subscribe.iter().map(|s| Bytes::from(s.clone())).collect()
                    };
                    Some((SocketKind::Sub, endpoint.clone(), prefixes))
                }
                TaskKind::RecurringTimer { .. } | TaskKind::DriftingTimer { .. } => None,
                other => {
                    let kind = other.type_name();
                    self.out.push_back(Output::Log {
                        level: LogLevel::Warn,
                        message: format!(
                            "{name}: task {:?} ({kind}) is not run by this node yet; its other tasks run",
                            task.name
                        ),
                    });
                    None
                }
            };
            if let Some(bind) = bind {
                binds.push((Some(index), bind));
            }
        }
        if let Some(pubsub) = &app.manifest.pubsub {
            binds.push((None, (SocketKind::Pub, pubsub.endpoint.clone(), Vec::new())));
        }
        for (task, (kind, address, subscribe)) in binds {
            let endpoint = self.new_endpoint(EndpointOwner { app: id, task });
            match task {
                Some(index) => app.tasks[index].endpoint = Some(endpoint),
                None => app.pubsub = Some(endpoint),
            }
            app.endpoints.push(endpoint);
            app.unbound += 1;
            self.out.push_back(Output::Bind {
                endpoint,
                kind,
                address,
                subscribe,
            });
        }
        if app.unbound == 0 {
            app.start(now, &mut self.out);
        }
        self.names.insert(name, id);
        self.apps.insert(id, app);
    }

    fn check_deployable(&self, manifest: &Manifest) -> Result<(), String> {
        if self.shutting_down {
            return Err("the node is shutting down".to_owned());
        }
        if self.names.contains_key(&manifest.app) {
            return Err(format!(
                "an app named {:?} is already running; remove it first",
                manifest.app
            ));
        }
        let mine = endpoint_addresses(manifest);
        for other in self.apps.values() {
            for address in endpoint_addresses(&other.manifest) {
                if mine.contains(&address) {
                    return Err(format!(
                        "endpoint {address} is already used by app {:?}",
                        other.name
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn bound(&mut self, now: Now, endpoint: EndpointId, result: Result<(), String>) {
        let Some(owner) = self.endpoints.get(&endpoint).copied() else {
            return;
        };
        let Some(app) = self.apps.get_mut(&owner.app) else {
            return;
        };
        match result {
            Ok(()) => {
                app.unbound = app.unbound.saturating_sub(1);
                if app.unbound == 0 && !app.started && !app.failed {
                    app.start(now, &mut self.out);
                }
            }
            Err(error) => {
                if app.failed {
                    return;
                }
                let what = match owner.task {
                    Some(task) => format!("task {:?}", app.tasks[task].name),
                    None => "pubsub".to_owned(),
                };
                let address = endpoint_address(&app.manifest, owner.task).unwrap_or_default();
                let reason = format!("cannot bind {address} for {what}: {error}");
                app.failed = true;
                let name = app.name.to_string();
                app.engine.stop(now.mono);
                self.log(LogLevel::Error, format!("{name}: {reason}"));
                self.out
                    .push_back(Output::DeployFailed { app: name, reason });
            }
        }
    }

    pub(super) fn remove(&mut self, now: Now, name: &str) {
        let Some(id) = self.names.get(name).copied() else {
            self.log(
                LogLevel::Warn,
                format!("{name}: cannot remove: no such app"),
            );
            return;
        };
        if let Some(app) = self.apps.get_mut(&id) {
            app.timers = Timers::new();
            app.engine.stop(now.mono);
        }
    }

    pub(super) fn shutdown(&mut self, now: Now) {
        self.shutting_down = true;
        let names: Vec<String> = self.names.keys().cloned().collect();
        for name in names {
            self.remove(now, &name);
        }
        if self.apps.is_empty() {
            self.out.push_back(Output::Stopped);
        }
    }

    /// Drops a stopped app and closes its endpoints.
    pub(super) fn forget(&mut self, id: AppId) {
        let Some(app) = self.apps.remove(&id) else {
            return;
        };
        self.names.remove(&*app.name);
        for endpoint in &app.endpoints {
            self.endpoints.remove(endpoint);
            self.out.push_back(Output::Unbind {
                endpoint: *endpoint,
            });
        }
        if !app.failed {
            self.out.push_back(Output::AppStopped {
                app: app.name.to_string(),
            });
        }
        if self.shutting_down && self.apps.is_empty() {
            self.out.push_back(Output::Stopped);
        }
    }
}

fn endpoint_address(manifest: &Manifest, task: Option<usize>) -> Option<String> {
    match task {
        None => manifest.pubsub.as_ref().map(|p| p.endpoint.clone()),
        Some(index) => manifest
            .tasks
            .get(index)
            .and_then(|t| t.kind.endpoint())
            .map(|(address, _)| address)
            .map(str::to_owned),
    }
}

/// Addresses an app binds (a subscriber connects, so it cannot conflict).
fn endpoint_addresses(manifest: &Manifest) -> Vec<String> {
    let mut addresses: Vec<String> = manifest
        .tasks
        .iter()
        .filter_map(|t| match t.kind.endpoint() {
            Some((address, Role::Bind)) => Some(address),
            _ => None,
        })
        .map(str::to_owned)
        .collect();
    if let Some(pubsub) = &manifest.pubsub {
        addresses.push(pubsub.endpoint.clone());
    }
    addresses
}
