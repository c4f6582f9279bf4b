//! The operator's verbs beside deploy and delete (docs/control.md): `status` (the node and
//! every app at a glance), `stop` and `start` (an app kept in the store, its workers and
//! endpoints gone; a restart keeps it stopped), `scale` (pool bounds at run time) and `quit`.

use serde_json::{json, Value};

use super::control::{Requester, StoreWait};
use super::io::{StoreDone, StoreError, StoreOp};
use super::lifecycle::FailedApp;
use super::Node;
use crate::process::LogLevel;
use crate::status;
use crate::time::Now;

impl Node {
    /// `status`: `info` of the node, each app with its workers, queue and job counts.
    pub(super) fn status(&self, now: Now) -> Value {
        let mut status = self.node_info(now);
        if let Some(apps) = status.get_mut("apps").and_then(Value::as_array_mut) {
            for entry in apps {
                let name = entry["app"].as_str().unwrap_or_default().to_owned();
                if let Some(app) = self.live(&name) {
                    let info = app.engine.info();
                    let total = |f: fn(&crate::stats::TaskStatsSnapshot) -> u64| {
                        info.tasks.values().map(f).sum::<u64>()
                    };
                    entry["queue"] = json!(info.queue);
                    entry["workers"] = json!(info.workers);
                    entry["running"] = json!(info.jobs.running);
                    entry["pool"] = json!({
                        "min": app.engine.config().pool_min,
                        "limit": app.engine.config().pool_limit,
                    });
                    entry["jobs"] = json!({
                        "accepted": total(|t| t.accepted),
                        "rejected": total(|t| t.rejected),
                        "completed": total(|t| t.completed),
                        "failed": total(|t| t.failed),
                    });
                    entry["stats"] = json!(info.tasks);
                }
            }
        }
        status
    }

    pub(super) fn control_stop(&mut self, requester: Requester, app: String) {
        if self.stopped.contains_key(&app) {
            self.reply_ok(&requester, json!({"app": app, "state": "stopped"}));
            return;
        }
        if self.live(&app).is_none() {
            let (code, message) = match self.failed.get(&app) {
                Some(failed) => (
                    status::CONFLICT,
                    format!("{app:?} is not running: {}", failed.reason),
                ),
                None => (status::NOT_FOUND, format!("no app named {app:?}")),
            };
            self.reply_error(&requester, code, message);
            return;
        }
        self.mark_stopped(requester, app, true);
    }

    pub(super) fn control_start(&mut self, requester: Requester, app: String) {
        if let Some(id) = self
            .names
            .get(&app)
            .copied()
            .filter(|_| self.live(&app).is_some())
        {
            let reply = self.app_summary(id, false);
            self.reply_ok(&requester, reply);
            return;
        }
        if !self.stopped.contains_key(&app) {
            let message = match self.failed.get(&app) {
                Some(failed) => format!(
                    "{app:?} could not start: {}; fix it and deploy it again, or reload it",
                    failed.reason
                ),
                None => format!("no app named {app:?}"),
            };
            let code = if self.failed.contains_key(&app) {
                status::CONFLICT
            } else {
                status::NOT_FOUND
            };
            self.reply_error(&requester, code, message);
            return;
        }
        self.mark_stopped(requester, app, false);
    }

    /// Writes the stopped mark in the store; the app stops or starts once it is written.
    fn mark_stopped(&mut self, requester: Requester, app: String, stopped: bool) {
        if let Err((code, message)) = self.check_storable(&app) {
            self.reply_error(&requester, code, message);
            return;
        }
        self.control.busy.insert(app.clone());
        let op = StoreOp::SetStopped {
            app: app.clone(),
            stopped,
        };
        let wait = if stopped {
            StoreWait::Stop { requester, app }
        } else {
            StoreWait::Start { requester, app }
        };
        self.store(op, wait);
    }

    /// Ends the control change of `app` the store carried out; a failed write is logged and
    /// answered 500 ("`app`: not `done`: ..."). Whether the write went through.
    pub(super) fn store_went_through(
        &mut self,
        requester: &Requester,
        app: &str,
        done: &str,
        result: Result<StoreDone, StoreError>,
    ) -> bool {
        self.control.busy.remove(app);
        let Err(error) = result else {
            return true;
        };
        let message = format!("{app}: not {done}: {error}");
        self.log(LogLevel::Error, message.clone());
        self.reply_error(requester, status::INTERNAL_ERROR, message);
        false
    }

    fn reply_no_such_app(&mut self, requester: &Requester, app: &str) {
        self.reply_error(
            requester,
            status::NOT_FOUND,
            format!("no app named {app:?}"),
        );
    }

    /// The store marked `app` stopped: it stops gracefully and is kept.
    pub(super) fn stop_written(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        result: Result<StoreDone, StoreError>,
    ) {
        if !self.store_went_through(&requester, &app, "stopped", result) {
            return;
        }
        let Some(running) = self.live(&app) else {
            self.reply_no_such_app(&requester, &app);
            return;
        };
        let record = FailedApp {
            origin: running.origin,
            reason: "stopped".to_owned(),
            version: Some(running.manifest.version),
            manifest: Some(Box::new(running.manifest.clone())),
            revision: running.revision,
        };
        self.remove(now, &app, None);
        self.stopped.insert(app.clone(), record);
        self.log(LogLevel::Info, format!("{app}: stopped"));
        self.reply_ok(&requester, json!({"app": app, "state": "stopped"}));
    }

    /// The store marked `app` running: it starts as it was, answered as a deploy is.
    pub(super) fn start_written(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        result: Result<StoreDone, StoreError>,
    ) {
        if !self.store_went_through(&requester, &app, "started", result) {
            return;
        }
        let Some(record) = self.stopped.remove(&app) else {
            self.reply_no_such_app(&requester, &app);
            return;
        };
        match record.manifest {
            Some(manifest) => {
                self.deploy(
                    now,
                    *manifest,
                    record.origin,
                    record.revision,
                    Some(requester),
                );
            }
            None => self.reply_error(
                &requester,
                status::CONFLICT,
                format!("{app:?} has no manifest to start; deploy it again"),
            ),
        }
    }

    /// `scale`: new pool bounds for the running version, until it is redeployed, reloaded
    /// or the node restarts (the manifest keeps its own).
    pub(super) fn control_scale(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        pool_min: Option<u64>,
        pool_limit: Option<u64>,
    ) {
        let Some(id) = self
            .names
            .get(&app)
            .copied()
            .filter(|_| self.live(&app).is_some())
        else {
            let (code, message) = if self.stopped.contains_key(&app) {
                (
                    status::CONFLICT,
                    format!("{app:?} is stopped; start it first"),
                )
            } else {
                (status::NOT_FOUND, format!("no app named {app:?}"))
            };
            self.reply_error(&requester, code, message);
            return;
        };
        let Some(engine) = self.apps.get_mut(&id).map(|a| &mut a.engine) else {
            return;
        };
        let config = engine.config();
        let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let min = pool_min.map_or(config.pool_min, as_usize);
        let limit = pool_limit.map_or(config.pool_limit, as_usize);
        if limit == 0 || min > limit {
            let message = format!(
                "pool-min {min} and pool-limit {limit}: the limit must be at least 1 and at \
                 least pool-min"
            );
            self.reply_error(&requester, status::BAD_REQUEST, message);
            return;
        }
        engine.scale(now.mono, min, limit);
        self.log(
            LogLevel::Info,
            format!("{app}: scaled to pool-min {min}, pool-limit {limit}"),
        );
        self.reply_ok(
            &requester,
            json!({"app": app, "pool-min": min, "pool-limit": limit}),
        );
    }

    /// `quit`: answered, then the node stops as on SIGTERM.
    pub(super) fn control_quit(&mut self, now: Now, requester: Requester) {
        self.reply_ok(&requester, json!({"quitting": true}));
        self.log(
            LogLevel::Info,
            "quit asked over control: stopping".to_owned(),
        );
        self.shutdown(now);
    }
}
