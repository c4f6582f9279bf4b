//! Apps coming and going: first deploys, redeploys without loss, removal and shutdown.
//!
//! A redeploy makes a *successor*: a second version of the app under the same name, with its
//! own engine. It binds only the endpoints the running version does not already have; the
//! ones both versions share (same socket type and address) are taken over as they are, so
//! their clients never see the socket close. Once the successor's own binds are up, it
//! *takes over*: shared endpoints now feed it, the old engine hands over its queue (jobs keep
//! their arrival time, deadline and request chunks) and lets its workers finish what they
//! run, then leave. If the successor cannot start, it is torn down and the running version
//! never noticed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::app::{App, TaskSlot};
use super::control::{Requester, StoreWait};
use super::io::{AppOrigin, Output, SocketKind, StoreOp};
use super::route::Route;
use super::{EndpointOwner, Node};
use crate::engine::Engine;
use crate::ids::{AppId, EndpointId};
use crate::manifest::{Manifest, TaskKind};
use crate::process::LogLevel;
use crate::time::Now;
use crate::timers::Timers;

/// An app that could not start (or whose stored manifest could not be read), kept so `list`
/// and `info` name it and an operator can fix, reload or delete it.
#[derive(Debug, Clone)]
pub(super) struct FailedApp {
    pub origin: AppOrigin,
    pub reason: String,
    pub version: Option<u64>,
    /// The manifest to try again with on `reload`, when it could be parsed.
    pub manifest: Option<Box<Manifest>>,
    /// The store's revision of it.
    pub revision: Option<u64>,
}

impl FailedApp {
    /// A stored app whose manifest could not be read or parsed: nothing to reload.
    pub fn stored_unparsed(reason: String, revision: Option<u64>) -> FailedApp {
        FailedApp {
            origin: AppOrigin::Store,
            reason,
            version: None,
            manifest: None,
            revision,
        }
    }
}

/// What one endpoint of a manifest needs: its socket and address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    /// The task's index, or `None` for the pubsub.
    task: Option<usize>,
    kind: SocketKind,
    address: String,
    subscribe: Vec<Bytes>,
}

impl Node {
    /// Deploys `manifest`: a first version, or a successor to the running one. Returns the
    /// new version's id, or why it cannot be deployed (already reported with
    /// `Output::DeployFailed`, and to `waiter`).
    pub(super) fn deploy(
        &mut self,
        now: Now,
        manifest: Manifest,
        origin: AppOrigin,
        revision: Option<u64>,
        waiter: Option<Requester>,
    ) -> Option<AppId> {
        let name = manifest.app.clone();
        if let Err(reason) = self.check_deployable(&manifest, origin) {
            self.log(LogLevel::Error, format!("{name}: not deployed: {reason}"));
            if let Some(waiter) = waiter {
                self.reply_error(&waiter, 409, format!("{name}: {reason}"));
            }
            self.out
                .push_back(Output::DeployFailed { app: name, reason });
            return None;
        }
        // A successor still starting is superseded by this newer one.
        if let Some(pending) = self.successors.remove(&name) {
            self.abandon(now, pending, "superseded by a newer deploy".to_owned());
        }
        let current = self.names.get(&name).copied();
        let id = AppId(self.next_app);
        self.next_app += 1;
        let mut app = new_app(now, id, manifest, origin);
        app.revision = revision;
        if let Some(waiter) = waiter {
            app.waiters.push(waiter);
        }
        let shared = match current.and_then(|c| self.apps.get(&c).map(|old| (c, old))) {
            Some((c, old)) => old_bindings(old, &self.endpoints, c),
            None => Vec::new(),
        };
        for binding in bindings(&app.manifest) {
            let task = binding.task;
            if let Some(&endpoint) = shared
                .iter()
                .find(|(_, b)| same_socket(b, &binding))
                .map(|(e, _)| e)
            {
                app.inherited.push((endpoint, task));
                app.endpoints.push(endpoint);
                set_endpoint(&mut app, task, endpoint);
                continue;
            }
            let endpoint = self.new_endpoint(EndpointOwner { app: id, task });
            set_endpoint(&mut app, task, endpoint);
            app.endpoints.push(endpoint);
            app.unbound += 1;
            self.out.push_back(Output::Bind {
                endpoint,
                kind: binding.kind,
                address: binding.address,
                subscribe: binding.subscribe,
            });
        }
        match current {
            Some(old) => {
                app.replaces = Some(old);
                self.successors.insert(name, id);
            }
            None => {
                self.failed.remove(&name);
                self.names.insert(name, id);
            }
        }
        let ready = app.unbound == 0;
        self.apps.insert(id, app);
        if ready {
            self.app_ready(now, id);
        }
        Some(id)
    }

    fn check_deployable(&self, manifest: &Manifest, origin: AppOrigin) -> Result<(), String> {
        if self.shutting_down {
            return Err("the node is shutting down".to_owned());
        }
        if let Some(current) = self
            .names
            .get(&manifest.app)
            .and_then(|id| self.apps.get(id))
        {
            if current.origin != origin {
                return Err(format!(
                    "an app named {:?} runs already, {}; change it there",
                    manifest.app,
                    origin_phrase(current.origin)
                ));
            }
        }
        let mine = endpoint_addresses(manifest);
        for other in self.apps.values() {
            if *other.name == manifest.app || other.retired {
                continue;
            }
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
        if self.control.owns(endpoint) {
            self.control_bound(endpoint, result);
            return;
        }
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
                    self.app_ready(now, owner.app);
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
                self.abandon(now, owner.app, reason);
            }
        }
    }

    /// Every endpoint of version `id` is up: it starts, taking over from the version it
    /// replaces, if any, once it has a worker ready (a version whose code cannot start never
    /// gets the queue: it breaks, and is abandoned, while the old one serves on).
    fn app_ready(&mut self, now: Now, id: AppId) {
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        if app.replaces.is_some() && !app.engine.has_ready_worker() {
            app.awaiting_worker = true;
            app.engine.warm_up(now.mono);
            return;
        }
        app.awaiting_worker = false;
        let name = app.name.to_string();
        let replaces = app.replaces.take();
        // Taking over from a removed version is a fresh start as far as anyone can tell.
        let redeployed =
            replaces.is_some_and(|old| self.apps.get(&old).is_some_and(|a| !a.removed));
        if let Some(old) = replaces {
            self.successors.remove(&name);
            self.take_over(now, old, id);
        }
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        app.start(now, &mut self.out);
        let waiters = std::mem::take(&mut app.waiters);
        let reply = self.app_summary(id, redeployed);
        for waiter in waiters {
            self.reply_ok(&waiter, reply.clone());
        }
        if let Some(old) = replaces {
            self.hand_over_watches(now, old, id);
        }
    }

    /// Successors waiting for a worker: one whose worker is ready takes over; one whose
    /// engine broke (its workers cannot start) is abandoned.
    /// Returns whether any did either.
    pub(super) fn check_successors(&mut self, now: Now) -> bool {
        let mut changed = false;
        let waiting: Vec<AppId> = self
            .successors
            .values()
            .copied()
            .filter(|id| self.apps.get(id).is_some_and(|a| a.awaiting_worker))
            .collect();
        for id in waiting {
            let Some(app) = self.apps.get(&id) else {
                continue;
            };
            if app.engine.has_ready_worker() {
                self.app_ready(now, id);
                changed = true;
            } else if let crate::engine::AppState::Broken { reason, .. } = app.engine.state() {
                let reason = format!("its workers cannot start: {reason}");
                self.abandon(now, id, reason);
                changed = true;
            }
        }
        changed
    }

    /// Version `new` replaces `old`: shared endpoints change hands, the queue moves, the old
    /// workers finish their running jobs and leave.
    fn take_over(&mut self, now: Now, old: AppId, new: AppId) {
        let Some(successor) = self.apps.get(&new) else {
            return;
        };
        let name = successor.name.to_string();
        for &(endpoint, task) in &successor.inherited {
            self.endpoints
                .insert(endpoint, EndpointOwner { app: new, task });
        }
        let new_version = successor.manifest.version;
        self.names.insert(name.clone(), new);
        let Some(previous) = self.apps.get_mut(&old) else {
            return;
        };
        previous.retired = true;
        previous.timers = Timers::new();
        for task in &mut previous.tasks {
            task.timer = None;
        }
        let old_version = previous.manifest.version;
        let handed = previous.engine.step_down(now.mono);
        let running = previous.engine.jobs_in_flight();
        let moved = handed.len();
        let Some(successor) = self.apps.get_mut(&new) else {
            return;
        };
        for (_, job) in handed {
            let mut job = job;
            if let Route::Publish { task } | Route::Scheduled { task, .. } = &mut job.reply {
                // Task indices differ between versions; the name is what stays.
                *task = successor
                    .tasks
                    .iter()
                    .position(|t| t.name == job.task)
                    .unwrap_or(usize::MAX);
            }
            let route = job.reply.clone();
            let adopted = successor.engine.adopt(now.mono, job);
            if let Route::Raw { conn, seq } = &route {
                self.raw.moved(*conn, *seq, (new, adopted));
            }
            if let Route::Native {
                endpoint,
                peer,
                sid,
                ..
            } = route
            {
                self.sessions.moved(endpoint, &peer, sid, (new, adopted));
            }
        }
        self.log(
            LogLevel::Info,
            format!(
                "{name}: version {new_version} takes over from version {old_version} \
                 ({moved} queued job(s) moved; {running} running job(s) finish on the old workers)"
            ),
        );
    }

    /// Version `id` could not start: it is torn down, the version it would have replaced (if
    /// any) runs on, and whoever waits for it hears why.
    pub(super) fn abandon(&mut self, now: Now, id: AppId, reason: String) {
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        if app.failed {
            return;
        }
        app.failed = true;
        app.timers = Timers::new();
        app.engine.stop(now.mono);
        let name = app.name.to_string();
        let origin = app.origin;
        let version = app.manifest.version;
        let manifest = Box::new(app.manifest.clone());
        let waiters = std::mem::take(&mut app.waiters);
        let revision = app.revision;
        let replaces = app.replaces;
        if let Some(old) = replaces {
            if self.successors.get(&name) == Some(&id) {
                self.successors.remove(&name);
            }
            // The store made this version current; the running one must be current again, or
            // its next worker (or the next start of the node) would load the refused code.
            let running = self.apps.get(&old).and_then(|a| a.revision);
            if let (Some(from), Some(to)) = (revision, running) {
                if from != to {
                    self.store(
                        StoreOp::Revert {
                            app: name.clone(),
                            to,
                            from,
                        },
                        StoreWait::Tidy {
                            what: format!("{name}: cannot restore revision {to} in the store"),
                        },
                    );
                }
            }
            self.log(
                LogLevel::Error,
                format!(
                    "{name}: version {version} not deployed, the running version goes on: {reason}"
                ),
            );
        } else {
            self.log(LogLevel::Error, format!("{name}: {reason}"));
            self.failed.insert(
                name.clone(),
                FailedApp {
                    origin,
                    reason: reason.clone(),
                    version: Some(version),
                    manifest: Some(manifest),
                    revision,
                },
            );
        }
        for waiter in waiters {
            self.reply_error(&waiter, 500, format!("{name}: cannot start: {reason}"));
        }
        self.out
            .push_back(Output::DeployFailed { app: name, reason });
    }

    /// Stops app `name` (and a successor still starting) gracefully and forgets it. Only an
    /// app of `origin` is removed, when one is given.
    pub(super) fn remove(&mut self, now: Now, name: &str, origin: Option<AppOrigin>) -> bool {
        let Some(id) = self.names.get(name).copied() else {
            if let Some(failed) = self.failed.get(name) {
                if origin.is_none_or(|o| o == failed.origin) {
                    self.failed.remove(name);
                    return true;
                }
            }
            self.log(
                LogLevel::Warn,
                format!("{name}: cannot remove: no such app"),
            );
            return false;
        };
        if let Some(want) = origin {
            let have = self.apps.get(&id).map(|a| a.origin);
            if have != Some(want) {
                self.log(
                    LogLevel::Warn,
                    format!(
                        "{name}: not removed: it runs {}",
                        origin_phrase(have.unwrap_or(want))
                    ),
                );
                return false;
            }
        }
        if let Some(pending) = self.successors.remove(name) {
            self.abandon(now, pending, "the app was removed".to_owned());
        }
        if let Some(app) = self.apps.get_mut(&id) {
            app.removed = true;
            app.stop_fs_tasks(&mut self.out);
            app.timers = Timers::new();
            app.engine.stop(now.mono);
        }
        true
    }

    /// The serving version of app `name`, unless it has been removed (it may still be
    /// finishing its jobs, but it answers to its name no more).
    pub(super) fn live(&self, name: &str) -> Option<&App> {
        self.names
            .get(name)
            .and_then(|id| self.apps.get(id))
            .filter(|app| !app.removed)
    }

    pub(super) fn shutdown(&mut self, now: Now) {
        self.shutting_down = true;
        let pending: Vec<AppId> = self.successors.values().copied().collect();
        for id in pending {
            self.abandon(now, id, "the node is shutting down".to_owned());
        }
        let names: Vec<String> = self.names.keys().cloned().collect();
        for name in names {
            self.remove(now, &name, None);
        }
        for endpoint in self.control.endpoints() {
            self.out.push_back(Output::Unbind { endpoint });
        }
        self.control.clear();
        if self.apps.is_empty() {
            self.out.push_back(Output::Stopped);
        }
    }

    /// Drops a stopped version and closes the endpoints that are still its own.
    pub(super) fn forget(&mut self, now: Now, id: AppId) {
        let Some(mut app) = self.apps.remove(&id) else {
            return;
        };
        app.stop_fs_tasks(&mut self.out);
        // A successor waiting to take over shared endpoints from this version loses them.
        let orphan = self
            .successors
            .get(&*app.name)
            .copied()
            .filter(|s| self.apps.get(s).is_some_and(|s| s.replaces == Some(id)));
        if let Some(successor) = orphan {
            let reason = "the running version stopped before the new one was up; deploy again";
            self.abandon(now, successor, reason.to_owned());
        }
        if self.names.get(&*app.name) == Some(&id) {
            self.names.remove(&*app.name);
        }
        for endpoint in &app.endpoints {
            if self.endpoints.get(endpoint).is_some_and(|o| o.app == id) {
                self.endpoints.remove(endpoint);
                self.raw_endpoint_closed(now, *endpoint);
                self.out.push_back(Output::Unbind {
                    endpoint: *endpoint,
                });
            }
        }
        for waiter in &app.waiters {
            let message = format!("{}: stopped before it was up", app.name);
            self.reply_error(waiter, 500, message);
        }
        if app.retired {
            let current = self
                .names
                .get(&*app.name)
                .and_then(|c| self.apps.get(c))
                .and_then(|c| c.revision);
            if let Some(revision) = app.revision.filter(|r| Some(*r) != current) {
                let name = app.name.to_string();
                self.store(
                    StoreOp::DropRevision {
                        app: name.clone(),
                        revision,
                    },
                    StoreWait::Tidy {
                        what: format!("{name}: cannot remove revision {revision} from the store"),
                    },
                );
            }
            self.log(
                LogLevel::Info,
                format!(
                    "{}: version {} retired: its last jobs finished",
                    app.name, app.manifest.version
                ),
            );
        } else if !app.failed {
            self.out.push_back(Output::AppStopped {
                app: app.name.to_string(),
            });
        }
        if self.shutting_down && self.apps.is_empty() {
            self.out.push_back(Output::Stopped);
        }
    }
}

fn new_app(now: Now, id: AppId, manifest: Manifest, origin: AppOrigin) -> App {
    let task_names: Vec<Arc<str>> = manifest
        .tasks
        .iter()
        .map(|t| Arc::from(t.name.as_str()))
        .collect();
    let name: Arc<str> = Arc::from(manifest.app.as_str());
    let engine = Engine::new(
        now.mono,
        id,
        name.clone(),
        manifest.engine.clone(),
        task_names.clone(),
    );
    App {
        name,
        origin,
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
        cron: Default::default(),
        dropped_publications: 0,
        pending_logs: Vec::new(),
        revision: None,
        replaces: None,
        inherited: Vec::new(),
        retired: false,
        removed: false,
        awaiting_worker: false,
        waiters: Vec::new(),
        finished_schedules: Vec::new(),
        fs: Default::default(),
        raw_replies: Vec::new(),
        manifest,
    }
}

fn set_endpoint(app: &mut App, task: Option<usize>, endpoint: EndpointId) {
    match task {
        Some(index) => app.tasks[index].endpoint = Some(endpoint),
        None => app.pubsub = Some(endpoint),
    }
}

/// The endpoints a manifest's tasks and pubsub need.
fn bindings(manifest: &Manifest) -> Vec<Binding> {
    let mut all = Vec::new();
    for (index, task) in manifest.tasks.iter().enumerate() {
        let (kind, address, subscribe) = match &task.kind {
            TaskKind::NativeServer { endpoint, .. } | TaskKind::ZeromqServer { endpoint, .. } => {
                (SocketKind::Router, endpoint.clone(), Vec::new())
            }
            TaskKind::ZeromqSink { endpoint, .. } | TaskKind::NativeSink { endpoint, .. } => {
                (SocketKind::Pull, endpoint.clone(), Vec::new())
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
                (SocketKind::Sub, endpoint.clone(), prefixes)
            }
            TaskKind::RawServer { endpoint, .. } => (SocketKind::Tcp, endpoint.clone(), Vec::new()),
            _ => continue,
        };
        all.push(Binding {
            task: Some(index),
            kind,
            address,
            subscribe,
        });
    }
    if let Some(pubsub) = &manifest.pubsub {
        all.push(Binding {
            task: None,
            kind: SocketKind::Pub,
            address: pubsub.endpoint.clone(),
            subscribe: Vec::new(),
        });
    }
    all
}

/// The endpoints the running version `id` owns, with what each is.
fn old_bindings(
    old: &App,
    owners: &HashMap<EndpointId, EndpointOwner>,
    id: AppId,
) -> Vec<(EndpointId, Binding)> {
    let all = bindings(&old.manifest);
    let mut shared = Vec::new();
    for binding in all {
        let endpoint = match binding.task {
            Some(task) => old.tasks.get(task).and_then(|t| t.endpoint),
            None => old.pubsub,
        };
        if let Some(endpoint) = endpoint.filter(|e| owners.get(e).is_some_and(|o| o.app == id)) {
            shared.push((endpoint, binding));
        }
    }
    shared
}

/// Whether two bindings can share one socket: the same type at the same address (and, for a
/// subscriber, the same prefixes). A native-server and a zeromq-server are both ROUTERs.
fn same_socket(a: &Binding, b: &Binding) -> bool {
    a.kind == b.kind && a.address == b.address && a.subscribe == b.subscribe
}

fn origin_phrase(origin: AppOrigin) -> &'static str {
    match origin {
        AppOrigin::CommandLine => "given on the command line",
        AppOrigin::Watched => "from the watched folder",
        AppOrigin::Store => "deployed over control",
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
    bindings(manifest)
        .into_iter()
        .filter(|b| b.kind != SocketKind::Sub)
        .map(|b| b.address)
        .collect()
}
