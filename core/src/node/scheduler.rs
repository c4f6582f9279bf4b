//! The manual scheduler: one-shot jobs for `manual-scheduler` tasks, submitted over control to
//! run at a wall-clock time, kept in the store until they have run so they survive a restart.
//!
//! A job leaves the store once its outcome is published, not when it starts: a node that dies
//! while the job runs runs it again at its next start (at least once, like a broker that acks
//! late). A job due while the node was down runs as soon as it is back, once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use super::control::{Requester, StoreWait};
use super::driver::DriverInput;
use super::io::{ScheduledJob, StoreDone, StoreOp};
use super::Node;
use crate::control::{check_app_name, When};
use crate::manifest::TaskKind;
use crate::process::LogLevel;
use crate::status;
use crate::time::{after, Now};
use crate::timers::{TimerHandle, Timers};

/// A job the node knows of: waiting for its time, or running.
#[derive(Debug)]
struct Pending {
    job: ScheduledJob,
    timer: Option<TimerHandle>,
}

/// Every scheduled job, by id, and the timers that fire them.
#[derive(Debug, Default)]
pub(super) struct Scheduler {
    jobs: BTreeMap<Arc<str>, Pending>,
    timers: Timers<Arc<str>>,
    next_seq: u64,
}

impl Scheduler {
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.timers.next_due()
    }

    /// The jobs of `app`, by due time, as `info` shows them.
    pub fn of_app(&self, app: &str) -> Vec<Value> {
        let mut jobs: Vec<&ScheduledJob> = self
            .jobs
            .values()
            .map(|p| &p.job)
            .filter(|j| j.app == app)
            .collect();
        jobs.sort_by_key(|j| (j.at_unix_ms, j.id.clone()));
        jobs.iter()
            .map(|j| json!({"id": j.id, "task": j.task, "at": j.at_unix_ms}))
            .collect()
    }

    /// A fresh id: the wall-clock time it was made and a counter, never one in use.
    fn new_id(&mut self, now: Now) -> String {
        loop {
            self.next_seq += 1;
            let id = format!("{}-{}", now.unix_ms(), self.next_seq);
            if !self.jobs.contains_key(id.as_str()) {
                return id;
            }
        }
    }

    fn insert(&mut self, now: Now, job: ScheduledJob) {
        let id: Arc<str> = Arc::from(job.id.as_str());
        let wait = Duration::from_millis(job.at_unix_ms.saturating_sub(now.unix_ms()));
        let timer = self.timers.arm(after(now.mono, wait), id.clone());
        if let Some(old) = self.jobs.insert(
            id,
            Pending {
                job,
                timer: Some(timer),
            },
        ) {
            if let Some(handle) = old.timer {
                self.timers.cancel(handle);
            }
        }
    }
}

impl Node {
    pub(super) fn control_schedule(
        &mut self,
        now: Now,
        requester: Requester,
        app: String,
        task: String,
        when: When,
        body: Option<Bytes>,
    ) {
        if let Err((code, message)) = self.check_schedulable(&app, &task) {
            self.reply_error(&requester, code, message);
            return;
        }
        let at_unix_ms = match when {
            When::At(ms) => ms,
            When::After(ms) => now.unix_ms().saturating_add(ms),
        };
        let job = ScheduledJob {
            id: self.scheduler.new_id(now),
            app,
            task,
            at_unix_ms,
            body: body.unwrap_or_default(),
        };
        self.store(
            StoreOp::PutJob(job.clone()),
            StoreWait::Schedule { requester, job },
        );
    }

    fn check_schedulable(&self, app: &str, task: &str) -> Result<(), (u32, String)> {
        let Some(running) = self.live(app) else {
            return Err((status::NOT_FOUND, format!("no app named {app:?}")));
        };
        let Some(found) = running.manifest.tasks.iter().find(|t| t.name == task) else {
            return Err((
                status::NOT_FOUND,
                format!("app {app:?} has no task {task:?}"),
            ));
        };
        if !matches!(found.kind, TaskKind::ManualScheduler) {
            return Err((
                status::BAD_REQUEST,
                format!(
                    "task {task:?} of {app:?} is a {}, not a manual-scheduler",
                    found.kind.type_name()
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn schedule_stored(
        &mut self,
        now: Now,
        requester: Requester,
        job: ScheduledJob,
        result: Result<StoreDone, super::io::StoreError>,
    ) {
        match result {
            Ok(_) => {
                let reply = json!({"id": job.id, "at": job.at_unix_ms});
                self.log(
                    LogLevel::Info,
                    format!(
                        "{}/{}: job {} scheduled at {} (unix ms)",
                        job.app, job.task, job.id, job.at_unix_ms
                    ),
                );
                self.scheduler.insert(now, job);
                self.reply_ok(&requester, reply);
            }
            Err(error) => {
                let message = format!("cannot store the job: {error}");
                self.reply_error(&requester, status::INTERNAL_ERROR, message);
            }
        }
    }

    pub(super) fn control_unschedule(&mut self, requester: Requester, id: String) {
        let Some(pending) = self.scheduler.jobs.get_mut(id.as_str()) else {
            self.reply_error(
                &requester,
                status::NOT_FOUND,
                format!("no scheduled job {id:?}"),
            );
            return;
        };
        let Some(timer) = pending.timer.take() else {
            let message = format!("job {id:?} is running already");
            self.reply_error(&requester, status::CONFLICT, message);
            return;
        };
        self.scheduler.timers.cancel(timer);
        self.scheduler.jobs.remove(id.as_str());
        self.store(
            StoreOp::DeleteJob { id: id.clone() },
            StoreWait::Unschedule {
                requester: Some(requester),
                id,
            },
        );
    }

    /// A job read from the store at start.
    pub(super) fn restore_job(&mut self, now: Now, job: Result<ScheduledJob, String>) {
        match job {
            Ok(job) if check_app_name(&job.id).is_ok() => self.scheduler.insert(now, job),
            Ok(job) => self.log(
                LogLevel::Error,
                format!("a stored job has an invalid id {:?}; ignored", job.id),
            ),
            Err(reason) => self.log(
                LogLevel::Error,
                format!("a stored scheduled job cannot be read: {reason}"),
            ),
        }
    }

    /// Runs the jobs that are due.
    pub(super) fn fire_scheduled(&mut self, now: Now) {
        while let Some((_, id)) = self.scheduler.timers.pop_due(now.mono) {
            let Some(pending) = self.scheduler.jobs.get_mut(&id) else {
                continue;
            };
            pending.timer = None;
            let job = pending.job.clone();
            if let Err(reason) = self.submit_scheduled(now, &id, &job) {
                self.log(
                    LogLevel::Error,
                    format!(
                        "{}/{}: scheduled job {id} not run: {reason}",
                        job.app, job.task
                    ),
                );
                self.finish_scheduled(&id);
            }
        }
    }

    /// Hands a due job to its task's driver, which runs it (or publishes why not).
    fn submit_scheduled(
        &mut self,
        now: Now,
        id: &Arc<str>,
        job: &ScheduledJob,
    ) -> Result<(), String> {
        let Some(app) = self.live(&job.app).map(|a| a.engine.app_id()) else {
            return Err("the app is not running".to_owned());
        };
        let task = self.apps.get(&app).and_then(|a| {
            a.manifest
                .tasks
                .iter()
                .position(|t| t.name == job.task && matches!(t.kind, TaskKind::ManualScheduler))
        });
        let Some(task) = task else {
            return Err("the app has no such manual-scheduler task any more".to_owned());
        };
        let input = DriverInput::Scheduled {
            id: id.clone(),
            body: job.body.clone(),
        };
        self.drive(now, (app, task), |d, cx| d.handle(cx, input));
        Ok(())
    }

    /// A scheduled job's outcome is out: it leaves the node and the store.
    pub(super) fn finish_scheduled(&mut self, id: &str) {
        if self.scheduler.jobs.remove(id).is_some() {
            self.store(
                StoreOp::DeleteJob { id: id.to_owned() },
                StoreWait::Unschedule {
                    requester: None,
                    id: id.to_owned(),
                },
            );
        }
    }

    /// Drops every job of a deleted app, from the node and the store.
    pub(super) fn unschedule_app(&mut self, app: &str) {
        let ids: Vec<Arc<str>> = self
            .scheduler
            .jobs
            .iter()
            .filter(|(_, p)| p.job.app == app)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(handle) = self
                .scheduler
                .jobs
                .get_mut(&id)
                .and_then(|p| p.timer.take())
            {
                self.scheduler.timers.cancel(handle);
            }
            self.finish_scheduled(&id);
        }
    }
}
