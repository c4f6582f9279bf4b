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

use std::sync::Arc;

use super::app::{App, Phase, TaskSlot};
use super::apps::Mark;
use super::control::{Requester, StoreWait};
use super::driver::{Binding, DriverInput};
use super::io::{AppOrigin, BindError, Output, SocketKind, StoreOp};
use super::{registry, EndpointOwner, Node};
use crate::engine::Engine;
use crate::ids::{AppId, EndpointId};
use crate::manifest::{Manifest, TaskKind};
use crate::process::LogLevel;
use crate::status;
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

/// What one endpoint of a version needs: the task's index (`None` for the pubsub) and its
/// socket.
type Need = (Option<usize>, Binding);

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
        let id = AppId(self.next_app);
        let checked = new_app(now, id, manifest, origin)
            .and_then(|app| self.check_deployable(&app).map(|()| app));
        let mut app = match checked {
            Ok(app) => app,
            Err(reason) => {
                self.log(LogLevel::Error, format!("{name}: not deployed: {reason}"));
                if let Some(waiter) = waiter {
                    self.reply_error(&waiter, status::CONFLICT, format!("{name}: {reason}"));
                }
                self.out
                    .push_back(Output::DeployFailed { app: name, reason });
                return None;
            }
        };
        self.next_app += 1;
        // A successor still starting is superseded by this newer one.
        if let Some(pending) = self.successors.remove(&name) {
            self.abandon(now, pending, "superseded by a newer deploy".to_owned());
        }
        let current = self.names.get(&name).copied();
        app.revision = revision;
        app.waiters.extend(waiter);
        self.bind_endpoints(&mut app, current);
        match current {
            Some(old) => {
                app.replaces = Some(old);
                self.successors.insert(name, id);
            }
            None => {
                self.failed.remove(&name);
                self.stopped.remove(&name);
                self.names.insert(name, id);
            }
        }
        let ready = app.phase == Phase::Binding { unbound: 0 };
        self.apps.insert(id, app);
        if ready {
            self.app_ready(now, id);
        }
        Some(id)
    }

    /// Asks for the endpoints of version `app`, except those the running version `current`
    /// has with the same socket: those it inherits.
    fn bind_endpoints(&mut self, app: &mut App, current: Option<AppId>) {
        let id = app.engine.app_id();
        let shared = match current.and_then(|c| self.apps.get(&c).map(|old| (c, old))) {
            Some((c, old)) => old_bindings(old, &self.endpoints, c),
            None => Vec::new(),
        };
        let mut unbound = 0;
        for (task, binding) in bindings(app) {
            if let Some(&(endpoint, _)) = shared.iter().find(|(_, b)| b.same_socket(&binding)) {
                app.inherited.push((endpoint, task));
                app.endpoints.push(endpoint);
                set_endpoint(app, task, endpoint);
                continue;
            }
            let endpoint = self.new_endpoint(EndpointOwner { app: id, task });
            set_endpoint(app, task, endpoint);
            app.endpoints.push(endpoint);
            unbound += 1;
            let address = match binding.kind {
                SocketKind::Sub => binding.address,
                _ => self.on_host(&binding.address),
            };
            self.out.push_back(Output::Bind {
                endpoint,
                kind: binding.kind,
                address,
                subscribe: binding.subscribe,
                max_message: binding.max_message,
            });
        }
        app.phase = Phase::Binding { unbound };
    }

    fn check_deployable(&self, app: &App) -> Result<(), String> {
        if self.shutting_down {
            return Err("the node is shutting down".to_owned());
        }
        let name = &*app.name;
        if let Some(current) = self.names.get(name).and_then(|id| self.apps.get(id)) {
            if current.origin != app.origin {
                return Err(format!(
                    "an app named {name:?} runs already, {}; change it there",
                    origin_phrase(current.origin)
                ));
            }
        }
        let mine = endpoint_addresses(app);
        for other in self.apps.in_id_order() {
            if other.name == app.name || other.phase == Phase::Retired {
                continue;
            }
            for address in endpoint_addresses(other) {
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

    pub(super) fn bound(&mut self, now: Now, endpoint: EndpointId, result: Result<(), BindError>) {
        if self.control.owns(endpoint) {
            self.control_bound(endpoint, result);
            return;
        }
        if self.owns_metrics(endpoint) {
            self.metrics_bound(endpoint, result);
            return;
        }
        if self.discovery_owns(endpoint) {
            self.discovery_bound(now, endpoint, result);
            return;
        }
        if self.replication.owns(endpoint) {
            self.link_bound(endpoint, result);
            return;
        }
        if self.shared.spill.owns(endpoint) {
            self.spill_bound(endpoint, result);
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
                if let Phase::Binding { unbound } = app.phase {
                    app.phase = Phase::Binding {
                        unbound: unbound.saturating_sub(1),
                    };
                    if unbound <= 1 {
                        self.app_ready(now, owner.app);
                    }
                }
            }
            Err(error) => {
                if app.phase == Phase::Failed {
                    return;
                }
                let what = match owner.task {
                    Some(task) => format!("task {:?}", app.tasks[task].name),
                    None => "pubsub".to_owned(),
                };
                let address = endpoint_address(app, owner.task).unwrap_or_default();
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
            app.phase = Phase::AwaitingWorker;
            app.engine.warm_up(now.mono);
            return;
        }
        let name = app.name.to_string();
        let replaces = app.replaces.take();
        // Taking over from a removed version is a fresh start as far as anyone can tell.
        let redeployed = replaces.is_some_and(|old| {
            self.apps
                .get(&old)
                .is_some_and(|a| a.phase != Phase::Removed)
        });
        match replaces {
            Some(old) => {
                self.successors.remove(&name);
                self.take_over(now, old, id);
            }
            None => self.start_app(now, id),
        }
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        if !redeployed && awaits_first_worker(app) {
            // Answered once its first worker is up, or has failed (`readiness.rs`).
            return;
        }
        let waiters = std::mem::take(&mut app.waiters);
        let reply = self.app_summary(id, redeployed);
        for waiter in waiters {
            self.reply_ok(&waiter, reply.clone());
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
            .filter(|id| {
                self.apps
                    .get(id)
                    .is_some_and(|a| a.phase == Phase::AwaitingWorker)
            })
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

    /// Version `new` replaces `old`: shared endpoints change hands, the queue moves, the new
    /// version starts, and each old task hands its state to the new task of the same name
    /// and type; the old workers finish their running jobs and leave.
    fn take_over(&mut self, now: Now, old: AppId, new: AppId) {
        let Some(successor) = self.apps.get(&new) else {
            return;
        };
        let name = successor.name.to_string();
        let old_limits = self
            .apps
            .get(&old)
            .map(|previous| old_bindings(previous, &self.endpoints, old))
            .unwrap_or_default();
        let new_limits = bindings(successor);
        for &(endpoint, task) in &successor.inherited {
            self.endpoints
                .insert(endpoint, EndpointOwner { app: new, task });
            let was = old_limits
                .iter()
                .find(|(e, _)| *e == endpoint)
                .map(|(_, b)| b.max_message);
            let will_be = new_limits
                .iter()
                .find(|(t, _)| *t == task)
                .map(|(_, b)| b.max_message);
            if let (Some(was), Some(will_be)) = (was, will_be) {
                if was != will_be {
                    self.out.push_back(Output::SetMaxMessage {
                        endpoint,
                        max_message: will_be,
                    });
                }
            }
        }
        let new_version = successor.manifest.version;
        self.names.insert(name.clone(), new);
        let Some(previous) = self.apps.get_mut(&old) else {
            return;
        };
        previous.phase = Phase::Retired;
        previous.timers = Timers::new();
        let old_version = previous.manifest.version;
        let running = previous.engine.jobs_in_flight();
        let pairs = self.pairs(old, new);
        let moved = self.move_queue(now, old, new, &pairs);
        self.log(
            LogLevel::Info,
            format!(
                "{name}: version {new_version} takes over from version {old_version} \
                 ({} queued job(s) moved; {running} running job(s) finish on the old workers)",
                moved.len()
            ),
        );
        self.start_app(now, new);
        self.hand_over(now, old, new, &pairs);
        for (task, token, job) in moved {
            self.drive(now, (new, task), |d, _| d.job_moved(token, job));
        }
    }

    /// Which task of version `new` takes over each task of `old`: the one of the same name
    /// and type (task indices differ between versions; the name is what stays).
    fn pairs(&self, old: AppId, new: AppId) -> Vec<Option<usize>> {
        let (Some(old), Some(new)) = (self.apps.get(&old), self.apps.get(&new)) else {
            return Vec::new();
        };
        let kind =
            |app: &App, task: usize| app.manifest.tasks.get(task).map(|t| t.kind.type_name());
        (0..old.tasks.len())
            .map(|i| {
                let j = new.tasks.iter().position(|t| t.name == old.tasks[i].name)?;
                (kind(old, i) == kind(new, j)).then_some(j)
            })
            .collect()
    }

    /// The old engine's queue moves to the new one, each job to the task that takes over its
    /// own. A job whose task has no successor is answered with 503. Returns the jobs moved,
    /// for their drivers to learn where they now run.
    fn move_queue(
        &mut self,
        now: Now,
        old: AppId,
        new: AppId,
        pairs: &[Option<usize>],
    ) -> Vec<(usize, u64, super::driver::JobRef)> {
        let handed = match self.apps.get_mut(&old) {
            Some(previous) => previous.engine.step_down(now.mono),
            None => Vec::new(),
        };
        let mut moved = Vec::with_capacity(handed.len());
        for (_, mut job) in handed {
            let route = job.reply;
            let Some(task) = pairs.get(route.task).copied().flatten() else {
                let message = format!("the new version has no {} task of this type", job.task);
                let event = crate::engine::ReplyEvent::Error(crate::status::Failure::new(
                    status::UNAVAILABLE,
                    message,
                ));
                self.drive(now, (old, route.task), |d, cx| {
                    d.reply(cx, route.token, event)
                });
                continue;
            };
            job.reply.task = task;
            let Some(successor) = self.apps.get_mut(&new) else {
                break;
            };
            let adopted = successor.engine.adopt(now.mono, job);
            let to = super::driver::JobRef {
                app: new,
                job: adopted,
            };
            moved.push((task, route.token, to));
        }
        moved
    }

    /// Each old task hands what must outlive it to its successor task; from then on what
    /// comes for the old task goes to the new one. Old tasks without a successor stop.
    fn hand_over(&mut self, now: Now, old: AppId, new: AppId, pairs: &[Option<usize>]) {
        if let Some(previous) = self.apps.get_mut(&old) {
            previous.successor = Some(new);
        }
        for (i, pair) in pairs.iter().enumerate() {
            let Some(j) = *pair else {
                self.drive_own(now, (old, i), |d, cx| d.stop(cx));
                continue;
            };
            let state = self.drive(now, (old, i), |d, cx| d.hand_over(cx));
            if let Some(state) = state {
                self.drive(now, (new, j), |d, cx| d.take_over(cx, state));
                if let Some(slot) = self.apps.get_mut(&old).and_then(|a| a.tasks.get_mut(i)) {
                    slot.handed_to = Some(j);
                }
            }
        }
    }

    /// Version `id` could not start: it is torn down, the version it would have replaced (if
    /// any) runs on, and whoever waits for it hears why.
    pub(super) fn abandon(&mut self, now: Now, id: AppId, reason: String) {
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        if app.phase == Phase::Failed {
            return;
        }
        app.phase = Phase::Failed;
        app.timers = Timers::new();
        app.engine.stop(now.mono);
        let name = app.name.to_string();
        let waiters = std::mem::take(&mut app.waiters);
        let (revision, replaces) = (app.revision, app.replaces);
        let failed = FailedApp {
            origin: app.origin,
            reason: reason.clone(),
            version: Some(app.manifest.version),
            manifest: Some(Box::new(app.manifest.clone())),
            revision,
        };
        self.drive_all(now, id, |d, cx| d.stop(cx));
        match replaces {
            Some(old) => self.abandon_successor(&name, id, old, revision, &reason),
            None => {
                self.log(LogLevel::Error, format!("{name}: {reason}"));
                self.failed.insert(name.clone(), failed);
            }
        }
        for waiter in waiters {
            let message = format!("{name}: cannot start: {reason}");
            self.reply_error(&waiter, status::INTERNAL_ERROR, message);
        }
        self.out
            .push_back(Output::DeployFailed { app: name, reason });
    }

    /// A successor `id` of `old` could not start: the running version goes on as it was.
    fn abandon_successor(
        &mut self,
        name: &str,
        id: AppId,
        old: AppId,
        revision: Option<u64>,
        reason: &str,
    ) {
        if self.successors.get(name) == Some(&id) {
            self.successors.remove(name);
        }
        // The store made this version current; the running one must be current again, or its
        // next worker (or the next start of the node) would load the refused code.
        let running = self.apps.get(&old).and_then(|a| a.revision);
        if let (Some(from), Some(to)) = (revision, running) {
            if from != to {
                self.store(
                    StoreOp::Revert {
                        app: name.to_owned(),
                        to,
                        from,
                    },
                    StoreWait::Tidy {
                        what: format!("{name}: cannot restore revision {to} in the store"),
                    },
                );
            }
        }
        let version = self.apps.get(&id).map_or(0, |a| a.manifest.version);
        self.log(
            LogLevel::Error,
            format!(
                "{name}: version {version} not deployed, the running version goes on: {reason}"
            ),
        );
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
            if app.phase != Phase::Failed {
                app.phase = Phase::Removed;
            }
            app.timers = Timers::new();
            app.engine.stop(now.mono);
        }
        self.drive_all(now, id, |d, cx| d.stop(cx));
        true
    }

    /// The serving version of app `name`, unless it has been removed or could not start (it
    /// may still be finishing its jobs, but it answers to its name no more).
    pub(super) fn live(&self, name: &str) -> Option<&App> {
        self.names
            .get(name)
            .and_then(|id| self.apps.get(id))
            .filter(|app| !matches!(app.phase, Phase::Removed | Phase::Failed))
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
        self.unbind_metrics();
        if self.apps.is_empty() {
            self.out.push_back(Output::Stopped);
        }
    }

    /// Drops a stopped version and closes the endpoints that are still its own. A version
    /// that took over state from an older one still finishing its jobs waits for it: the
    /// older one's replies reach their clients through this one's drivers.
    pub(super) fn forget(&mut self, now: Now, id: AppId) {
        if self.apps.values().any(|a| a.successor == Some(id)) {
            return;
        }
        self.drive_all(now, id, |d, cx| d.stop(cx));
        self.close_endpoints(now, id);
        self.drive_all(now, id, |d, cx| d.close(cx));
        let Some(app) = self.apps.remove(&id) else {
            return;
        };
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
        for waiter in &app.waiters {
            let message = format!("{}: stopped before it was up", app.name);
            self.reply_error(waiter, status::INTERNAL_ERROR, message);
        }
        match app.phase {
            Phase::Retired => self.retired(&app),
            Phase::Failed => {}
            _ => self.out.push_back(Output::AppStopped {
                app: app.name.to_string(),
            }),
        }
        let waiting = app
            .successor
            .filter(|next| self.apps.get(next).is_some_and(|a| a.engine.is_stopped()));
        if let Some(next) = waiting {
            self.forget(now, next);
        }
        if self.shutting_down && self.apps.is_empty() {
            self.out.push_back(Output::Stopped);
        }
    }

    /// Closes the endpoints version `id` still owns; a driver of a later version serving one
    /// of them (through a hand-over) hears of it.
    fn close_endpoints(&mut self, now: Now, id: AppId) {
        let Some(app) = self.apps.get(&id) else {
            return;
        };
        let endpoints = app.endpoints.clone();
        for endpoint in endpoints {
            let Some(owner) = self.endpoints.get(&endpoint).copied() else {
                continue;
            };
            if owner.app != id {
                continue;
            }
            self.endpoints.remove(&endpoint);
            if let Some(task) = owner.task {
                let input = DriverInput::Unbound { endpoint };
                self.drive(now, (id, task), |d, cx| d.handle(cx, input));
            }
            self.out.push_back(Output::Unbind { endpoint });
        }
    }

    /// A replaced version is gone: its revision leaves the store unless it is current.
    fn retired(&mut self, app: &App) {
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
    }
}

/// Whether a first version just started should answer its deploy only once a worker is up:
/// with `pool-min` 0 no worker starts before the first job, so there is nothing to wait for.
pub(super) fn awaits_first_worker(app: &App) -> bool {
    app.engine.config().pool_min >= 1 && !app.engine.ever_ready()
}

/// A version of `manifest`, with a driver per task; or why it cannot run.
fn new_app(now: Now, id: AppId, manifest: Manifest, origin: AppOrigin) -> Result<App, String> {
    let task_keys = manifest.tasks.iter().any(|t| match &t.kind {
        TaskKind::NativeServer { security, .. } | TaskKind::NativeSink { security, .. } => {
            security.as_ref().is_some_and(|s| s.keys.is_some())
        }
        _ => false,
    });
    if task_keys || manifest.security.as_ref().is_some_and(|s| s.keys.is_some()) {
        // Parsed so manifests that name one keep reading, but not followed: refusing is
        // better than silently checking signatures against another key store.
        return Err(
            "security.keys: a key folder per app is not supported; put the users' \
                    keys in the node's key folder (--keys)"
                .to_owned(),
        );
    }
    let mut tasks = Vec::with_capacity(manifest.tasks.len());
    for task in &manifest.tasks {
        let Some(driver) = registry::driver(task) else {
            let kind = task.kind.type_name();
            return Err(format!("task {:?}: no driver for type {kind:?}", task.name));
        };
        tasks.push(TaskSlot {
            name: Arc::from(task.name.as_str()),
            endpoint: None,
            driver: Some(driver),
            handed_to: None,
        });
    }
    let task_names: Vec<Arc<str>> = tasks.iter().map(|t| t.name.clone()).collect();
    let name: Arc<str> = Arc::from(manifest.app.as_str());
    let engine = Engine::new(
        now.mono,
        id,
        name.clone(),
        manifest.engine.clone(),
        task_names,
    );
    Ok(App {
        name,
        origin,
        engine,
        tasks,
        pubsub: None,
        endpoints: Vec::new(),
        phase: Phase::Binding { unbound: 0 },
        timers: Timers::new(),
        dropped_publications: 0,
        revision: None,
        replaces: None,
        successor: None,
        inherited: Vec::new(),
        waiters: Vec::new(),
        mark: Mark::default(),
        manifest,
    })
}

fn set_endpoint(app: &mut App, task: Option<usize>, endpoint: EndpointId) {
    match task {
        Some(index) => app.tasks[index].endpoint = Some(endpoint),
        None => app.pubsub = Some(endpoint),
    }
}

/// The endpoints a version's tasks and pubsub need.
fn bindings(app: &App) -> Vec<Need> {
    let mut all: Vec<Need> = app
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(index, t)| Some((Some(index), t.driver.as_ref()?.binding()?)))
        .collect();
    if let Some(pubsub) = &app.manifest.pubsub {
        all.push((None, Binding::new(SocketKind::Pub, &pubsub.endpoint)));
    }
    all
}

/// The endpoints the running version `id` owns, with what each is. Two bindings can share
/// one socket when [`Binding::same_socket`] says so. A native-server and a zeromq-server are
/// both ROUTERs.
fn old_bindings(
    old: &App,
    owners: &crate::ids::IdMap<EndpointId, EndpointOwner>,
    id: AppId,
) -> Vec<(EndpointId, Binding)> {
    let mut shared = Vec::new();
    for (task, binding) in bindings(old) {
        let endpoint = match task {
            Some(task) => old.tasks.get(task).and_then(|t| t.endpoint),
            None => old.pubsub,
        };
        if let Some(endpoint) = endpoint.filter(|e| owners.get(e).is_some_and(|o| o.app == id)) {
            shared.push((endpoint, binding));
        }
    }
    shared
}

fn origin_phrase(origin: AppOrigin) -> &'static str {
    match origin {
        AppOrigin::CommandLine => "given on the command line",
        AppOrigin::Watched => "from the watched folder",
        AppOrigin::Store => "deployed over control",
    }
}

fn endpoint_address(app: &App, task: Option<usize>) -> Option<String> {
    bindings(app)
        .into_iter()
        .find(|(t, _)| *t == task)
        .map(|(_, b)| b.address)
}

/// Addresses a version binds (a subscriber connects, so it cannot conflict).
fn endpoint_addresses(app: &App) -> Vec<String> {
    bindings(app)
        .into_iter()
        .filter(|(_, b)| b.kind != SocketKind::Sub)
        .map(|(_, b)| b.address)
        .collect()
}
