//! recurring-timer and drifting-timer: jobs made by time, replies published.

use std::time::{Duration, Instant};

use super::app::{App, AppTimer};
use super::route::Route;
use crate::engine::{AppState, JobPolicy, JobRequest, ReplyMode};
use crate::manifest::TaskKind;
use crate::process::LogLevel;
use crate::time::after;
use crate::time::Now;

impl App {
    pub(super) fn start_timer_tasks(&mut self, now: Now) {
        for index in 0..self.tasks.len() {
            match self.manifest.tasks[index].kind {
                TaskKind::RecurringTimer {
                    interval,
                    immediate,
                } => {
                    let first = if immediate {
                        now.mono
                    } else {
                        after(now.mono, interval)
                    };
                    self.arm_task(index, first);
                }
                TaskKind::DriftingTimer { interval } => {
                    self.arm_task(index, after(now.mono, interval))
                }
                _ => {}
            }
        }
    }

    fn arm_task(&mut self, index: usize, at: Instant) {
        let slot = &mut self.tasks[index];
        self.timers.cancel_slot(&mut slot.timer);
        slot.next_due = Some(at);
        slot.timer = Some(self.timers.arm(at, AppTimer::Task(index)));
    }

    pub(super) fn timer_task_due(&mut self, now: Now, index: usize) {
        let Some(slot) = self.tasks.get_mut(index) else {
            return;
        };
        slot.timer = None;
        let due = slot.next_due.unwrap_or(now.mono);
        let kind = self.manifest.tasks[index].kind.clone();
        match kind {
            TaskKind::RecurringTimer { interval, .. } => {
                // Stay on the grid; after a stall, skip the points already missed rather than
                // firing a burst to catch up.
                let mut next = after(due, interval);
                if next <= now.mono {
                    let step = interval.as_nanos().max(1);
                    let into = now.mono.saturating_duration_since(due).as_nanos() % step;
                    next = after(now.mono, Duration::from_nanos((step - into) as u64));
                }
                self.arm_task(index, next);
                self.submit_timer_job(now, index);
            }
            // A refused job never ends, so the drift starts from the refusal.
            TaskKind::DriftingTimer { interval } if !self.submit_timer_job(now, index) => {
                self.arm_task(index, after(now.mono, interval));
            }
            _ => {}
        }
    }

    /// Submits the task's job; false if it was refused.
    pub(super) fn submit_timer_job(&mut self, now: Now, index: usize) -> bool {
        let name = self.tasks[index].name.clone();
        let request = JobRequest {
            task: index,
            event: name.clone(),
            policy: JobPolicy::default(),
            reply: Route::Publish { task: index },
            mode: ReplyMode::Collect {
                limit: self.engine.config().max_message,
            },
            origin: None,
            body: Some(Vec::new()),
        };
        match self.engine.submit(now.mono, request) {
            Ok(_) => true,
            Err(failure) => {
                let message = format!("{}/{name}: timer job refused: {failure}", self.name);
                self.engine_log(LogLevel::Warn, message);
                false
            }
        }
    }

    /// A publication's job ended: a drifting timer counts its interval from here.
    pub(super) fn publication_ended(&mut self, now: Now, index: usize) {
        if let Some(TaskKind::DriftingTimer { interval }) =
            self.manifest.tasks.get(index).map(|t| &t.kind)
        {
            let at = after(now.mono, *interval);
            // A stopping app submits nothing more: its timers were dropped with `remove`.
            let stopping = matches!(self.engine.state(), AppState::Stopping | AppState::Stopped);
            if !stopping && self.started {
                self.arm_task(index, at);
            }
        }
    }

    fn engine_log(&mut self, level: LogLevel, message: String) {
        self.pending_logs.push((level, message));
    }
}
