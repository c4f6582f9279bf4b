//! manual-scheduler: one-shot jobs submitted over control, replies published. The node's
//! scheduler (`scheduler.rs`) keeps the jobs and their times; this driver runs one when it is
//! due and tells the node when its outcome is out, so it leaves the store.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::driver::{Cx, Driver, DriverInput, Handover, Job};
use crate::engine::ReplyEvent;
use crate::manifest::keys::{Ctx, Obj, Problems};
use crate::manifest::{Task, TaskKind};
use crate::process::LogLevel;

/// Scheduled jobs running, by token: their ids.
type Running = HashMap<u64, Arc<str>>;

#[derive(Debug, Default)]
pub(super) struct ManualScheduler {
    running: Running,
}

/// manual-scheduler: no keys of its own.
pub(crate) fn parse(_: &mut Obj<'_>, _: &Ctx<'_>, _: &mut Problems) -> TaskKind {
    TaskKind::ManualScheduler
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    matches!(task.kind, TaskKind::ManualScheduler)
        .then(|| Box::new(ManualScheduler::default()) as Box<dyn Driver>)
}

impl Driver for ManualScheduler {
    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        if let DriverInput::Scheduled { id, body } = input {
            self.run(cx, id, body);
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, token: u64, event: ReplyEvent) {
        let terminal = event.is_terminal();
        cx.publish_reply(event);
        if terminal {
            if let Some(id) = self.running.remove(&token) {
                cx.scheduled_done(id);
            }
        }
    }

    fn hand_over(&mut self, _cx: &mut Cx<'_>) -> Option<Handover> {
        Some(Box::new(std::mem::take(&mut self.running)))
    }

    fn take_over(&mut self, _cx: &mut Cx<'_>, from: Handover) {
        if let Ok(running) = from.downcast::<Running>() {
            self.running.extend(*running);
        }
    }
}

impl ManualScheduler {
    /// Submits a due job; one refused is published as an error and done with.
    fn run(&mut self, cx: &mut Cx<'_>, id: Arc<str>, body: Bytes) {
        let (app, task) = (cx.app_name(), cx.task_name());
        let token = cx.token();
        let job = Job::collect(vec![body], cx.max_message());
        match cx.submit(token, job) {
            Ok(_) => {
                self.running.insert(token, id.clone());
                cx.log(
                    LogLevel::Info,
                    format!("{app}/{task}: scheduled job {id} runs"),
                );
            }
            Err(failure) => {
                let value =
                    json!({"code": failure.code, "message": failure.message, "task": &*task});
                cx.publish("engine", "error", &value);
                let message = format!("{app}/{task}: scheduled job {id} not run: {failure}");
                cx.log(LogLevel::Error, message);
                cx.scheduled_done(id);
            }
        }
    }
}
