//! Taking things to drivers: inputs by the endpoint, connection or watch they came on, timers
//! by their task, replies by their route; and carrying engine outputs out. Timers and outputs
//! are found through the index of `apps.rs`, never by walking every app.

use serde_json::Value;

use super::app::{AppTimer, Phase};
use super::driver::{Cx, Driver, DriverInput};
use super::io::Output;
use super::{spawn, Node};
use crate::engine::EngineOutput;
use crate::ids::{AppId, ConnId, EndpointId, WorkerId};
use crate::process::LogLevel;
use crate::time::{after, Now};

impl Node {
    /// Runs `f` on the driver of `task` of version `app`, or of the version its state was
    /// handed over to. The driver leaves its slot while it runs, so it may reach every
    /// engine through its [`Cx`].
    pub(super) fn drive<T: Default>(
        &mut self,
        now: Now,
        (app, task): (AppId, usize),
        f: impl FnOnce(&mut dyn Driver, &mut Cx<'_>) -> T,
    ) -> T {
        let Some(home) = self.resolve(app, task) else {
            return T::default();
        };
        let slot = self
            .apps
            .get_mut(&home.0)
            .and_then(|a| a.tasks.get_mut(home.1));
        let Some(mut driver) = slot.and_then(|s| s.driver.take()) else {
            return T::default();
        };
        let mut cx = Cx::new(
            now,
            home,
            &mut self.apps,
            &mut self.out,
            (&self.config, &mut self.shared),
            (
                &mut self.auth.verifier,
                self.membership
                    .as_ref()
                    .map(super::cluster::Membership::table),
            ),
        );
        let result = f(driver.as_mut(), &mut cx);
        if let Some(slot) = self
            .apps
            .get_mut(&home.0)
            .and_then(|a| a.tasks.get_mut(home.1))
        {
            slot.driver = Some(driver);
        }
        for id in std::mem::take(&mut self.shared.scheduled_done) {
            self.finish_scheduled(&id);
        }
        result
    }

    /// Where `task` of `app` lives now: hand-overs move a task's state to the next version.
    fn resolve(&self, mut app: AppId, mut task: usize) -> Option<(AppId, usize)> {
        loop {
            let version = self.apps.get(&app)?;
            match (version.tasks.get(task)?.handed_to, version.successor) {
                (Some(next), Some(successor)) => (app, task) = (successor, next),
                _ => return Some((app, task)),
            }
        }
    }

    /// Runs `f` on every driver of `app`, in task order.
    pub(super) fn drive_all(
        &mut self,
        now: Now,
        app: AppId,
        f: impl Fn(&mut dyn Driver, &mut Cx<'_>),
    ) {
        let count = self.apps.get(&app).map_or(0, |a| a.tasks.len());
        for task in 0..count {
            self.drive_own(now, (app, task), &f);
        }
    }

    /// Like [`Node::drive`], but never forwarded: the driver still in this version's slot.
    pub(super) fn drive_own(
        &mut self,
        now: Now,
        (app, task): (AppId, usize),
        f: impl FnOnce(&mut dyn Driver, &mut Cx<'_>),
    ) {
        let handed = self
            .apps
            .get(&app)
            .and_then(|a| a.tasks.get(task))
            .is_none_or(|t| t.handed_to.is_some());
        if !handed {
            self.drive(now, (app, task), f);
        }
    }

    pub(super) fn received(&mut self, now: Now, endpoint: EndpointId, frames: Vec<bytes::Bytes>) {
        if self.control.owns(endpoint) {
            self.control_received(now, endpoint, frames);
            return;
        }
        if self.replication.owns(endpoint) {
            self.link_received(frames);
            return;
        }
        if self.shared.spill.owns(endpoint) {
            self.spill_received(endpoint, frames);
            return;
        }
        let Some(owner) = self.endpoints.get(&endpoint).copied() else {
            return;
        };
        let Some(task) = owner.task else { return };
        let input = DriverInput::Received { endpoint, frames };
        self.drive(now, (owner.app, task), |d, cx| d.handle(cx, input));
    }

    pub(super) fn accepted(&mut self, now: Now, endpoint: EndpointId, conn: ConnId, peer: String) {
        let task = self
            .endpoints
            .get(&endpoint)
            .and_then(|o| Some((o.app, o.task?)));
        let Some(task) = task else {
            // The endpoint went away as the client came.
            self.out.push_back(Output::ConnClose { conn });
            return;
        };
        let input = DriverInput::Accepted {
            endpoint,
            conn,
            peer,
        };
        let taken = self.drive(now, task, |d, cx| {
            d.handle(cx, input);
            true
        });
        if !taken {
            self.out.push_back(Output::ConnClose { conn });
        }
    }

    pub(super) fn conn_input(&mut self, now: Now, conn: ConnId, input: DriverInput) {
        if let Some(owner) = self.shared.conns.get(&conn).copied() {
            self.drive(now, (owner.app, owner.task), |d, cx| d.handle(cx, input));
        }
    }

    /// Fires what is due by `now`: each due app's engine timeouts and app timers, in app id
    /// order. Only apps the index says are due are visited; an app another's timer makes due
    /// fires in the same pass when its id is later (at the next input otherwise, which comes
    /// at once since the node's `poll_timeout` is then past).
    pub(super) fn fire_timers(&mut self, now: Now) {
        self.apps.reindex(now.mono, |_| {});
        let mut due = self.apps.due_by(now.mono);
        while let Some(id) = due.pop_first() {
            self.apps.visit();
            // An earlier app's timer may have moved this one's deadline since it was read.
            let still_due = (self.apps.get(&id))
                .and_then(super::app::App::poll_timeout)
                .is_some_and(|at| at <= now.mono);
            if !still_due {
                continue;
            }
            if let Some(app) = self.apps.get_mut(&id) {
                app.engine.handle_timeout(now.mono);
            }
            while let Some((_, timer)) = self
                .apps
                .get_mut(&id)
                .and_then(|a| a.timers.pop_due(now.mono))
            {
                match timer {
                    AppTimer::Stats => self.publish_stats(now, id),
                    AppTimer::Driver { task, token } => {
                        let input = DriverInput::Timer { token };
                        self.drive_own(now, (id, task), |d, cx| d.handle(cx, input));
                    }
                }
            }
            self.apps.reindex(now.mono, |other| {
                if other > id {
                    due.insert(other);
                }
            });
        }
        self.fire_scheduled(now);
        self.drain_engines(now);
    }

    fn publish_stats(&mut self, now: Now, id: AppId) {
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        if let Some(pubsub) = &app.manifest.pubsub {
            let at = after(now.mono, pubsub.interval);
            app.timers.arm(at, AppTimer::Stats);
        }
        let stats = serde_json::to_value(app.engine.info()).unwrap_or(Value::Null);
        app.publish(now, &self.config, &mut self.out, "engine", "stats", &stats);
    }

    /// Carries engine outputs out, taking replies to their drivers; repeats while that makes
    /// more (a drifting timer submits when its job ends). Only apps changed since their last
    /// drain are visited; the deadlines of all it changed are read again at the end.
    pub(super) fn drain_engines(&mut self, now: Now) {
        loop {
            let drained = self.drain_pass(now);
            self.check_first_workers(&drained);
            // A successor that takes over or is abandoned makes outputs of its own.
            let changed = !self.successors.is_empty() && self.check_successors(now);
            if !changed && !self.apps.has_undrained() {
                break;
            }
        }
        self.apps.reindex(now.mono, |_| {});
    }

    /// Drains every app changed since its last drain, in id order; one a drain changes comes
    /// in this pass when its id is later, in the next pass otherwise. Returns those drained.
    fn drain_pass(&mut self, now: Now) -> Vec<AppId> {
        let mut pass = Vec::new();
        self.apps.take_undrained(&mut pass);
        if pass.is_empty() {
            return pass;
        }
        pass.sort_unstable();
        pass.dedup();
        let (mut next, mut touched, mut later) = (0, Vec::new(), Vec::new());
        while let Some(&id) = pass.get(next) {
            next += 1;
            self.apps.visit();
            let stopped = self.drain(now, id);
            // Marked again from here: what stopping it makes is drained in the next pass.
            self.apps.drained(id);
            if stopped {
                self.forget(now, id);
            }
            self.apps.take_undrained(&mut touched);
            for other in touched.drain(..) {
                if other <= id {
                    later.push(other);
                } else if let Err(at) = pass[next..].binary_search(&other) {
                    pass.insert(next + at, other);
                }
            }
        }
        self.apps.keep_undrained(later);
        pass
    }

    /// Carries one version's engine outputs out. Returns true once its engine has stopped.
    fn drain(&mut self, now: Now, id: AppId) -> bool {
        let mut stopped = false;
        while let Some(output) = self.apps.get_mut(&id).and_then(|a| a.engine.poll_output()) {
            match output {
                EngineOutput::Reply { reply, event } => {
                    let token = reply.token;
                    self.drive(now, (id, reply.task), |d, cx| d.reply(cx, token, event));
                }
                EngineOutput::Spawn { worker } => {
                    if let Some(app) = self.apps.get(&id) {
                        let spec = spawn::spec(&self.config, &app.manifest, worker);
                        self.out.push_back(Output::Spawn(spec));
                    }
                }
                EngineOutput::Kill { worker, signal } => {
                    self.out.push_back(Output::Kill { worker, signal })
                }
                EngineOutput::ToWorker { worker, bytes } => {
                    self.out.push_back(Output::ToWorker { worker, bytes })
                }
                EngineOutput::Event(event) => {
                    if let Some(app) = self.apps.get_mut(&id) {
                        app.publish_event(now, &self.config, &mut self.out, event);
                    }
                }
                EngineOutput::Log { level, message } => self.log(level, message),
                EngineOutput::Stopped => stopped = true,
            }
        }
        stopped
    }

    /// Every endpoint of version `id` is up and it serves: its drivers start.
    pub(super) fn start_app(&mut self, now: Now, id: AppId) {
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        app.phase = Phase::Running;
        let (name, version) = (app.name.to_string(), app.manifest.version);
        if let Some(pubsub) = &app.manifest.pubsub {
            app.timers
                .arm(after(now.mono, pubsub.interval), AppTimer::Stats);
        }
        let template = spawn::spec(&self.config, &app.manifest, WorkerId::new(id, 0));
        if template.fork {
            self.out.push_back(Output::PrepareWorkers(template));
        }
        self.out.push_back(Output::AppStarted { app: name.clone() });
        self.log(
            LogLevel::Info,
            format!("{name}: started (version {version})"),
        );
        self.drive_all(now, id, |d, cx| d.start(cx));
    }
}
