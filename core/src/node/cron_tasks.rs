//! cron: jobs made by a wall-clock schedule in a time zone, replies published.
//!
//! The next fire is computed on the wall clock (`now.wall`) and armed as an app timer on the
//! monotonic clock, `next - wall` from now. When it fires, the wall clock is checked again:
//! if it was set back meanwhile, the timer is armed for the rest. A fire that comes late
//! (a stalled node, a clock set forward) fires once, and the schedule resumes from the
//! present: missed fires are not made up in a burst.
//!
//! A fire that finds the task's previous job still running (queued or dispatched) follows
//! the task's `overlap`: `skip` drops it (counted and logged), `buffer-one` keeps one to
//! submit when the running job ends (later ones are dropped as with skip), `allow` submits
//! it anyway.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use super::app::{App, AppTimer};
use crate::cron::{CronSchedule, CronZone};
use crate::engine::AppState;
use crate::manifest::{Overlap, TaskKind};
use crate::process::LogLevel;
use crate::time::{after, Now};
use crate::timers::TimerHandle;

/// The state of an app's cron tasks, by task index.
#[derive(Debug, Default)]
pub(super) struct CronTasks {
    tasks: BTreeMap<usize, CronTask>,
}

#[derive(Debug)]
struct CronTask {
    schedule: CronSchedule,
    zone: CronZone,
    overlap: Overlap,
    /// The wall-clock time (unix ms) of the next fire, which the timer is armed for.
    next: Option<u64>,
    timer: Option<TimerHandle>,
    /// Jobs of this task submitted and not ended yet.
    running: usize,
    /// A fire kept until the running job ends (`buffer-one`).
    buffered: bool,
    /// Fires dropped because the previous job was still running.
    skipped: u64,
}

/// What a fire does, decided before the job is submitted.
enum Fire {
    Submit,
    Buffer,
    Skip,
}

impl App {
    pub(super) fn start_cron_tasks(&mut self, now: Now) {
        for index in 0..self.manifest.tasks.len() {
            let TaskKind::Cron {
                schedule,
                timezone,
                overlap,
            } = &self.manifest.tasks[index].kind
            else {
                continue;
            };
            // The manifest was validated with the same parser, so this only fails for a
            // manifest built by hand.
            let parsed =
                CronSchedule::parse(schedule).and_then(|s| Ok((s, CronZone::get(timezone)?)));
            let (schedule, zone) = match parsed {
                Ok(parsed) => parsed,
                Err(e) => {
                    let message = format!(
                        "{}/{}: cron task not run: {e}",
                        self.name, self.tasks[index].name
                    );
                    self.pending_logs.push((LogLevel::Error, message));
                    continue;
                }
            };
            let task = CronTask {
                schedule,
                zone,
                overlap: *overlap,
                next: None,
                timer: None,
                running: 0,
                buffered: false,
                skipped: 0,
            };
            self.cron.tasks.insert(index, task);
            self.arm_cron(now, index, now.unix_ms());
        }
    }

    /// Arms task `index` for its first fire strictly after `from` (unix ms).
    fn arm_cron(&mut self, now: Now, index: usize, from: u64) {
        let Some(task) = self.cron.tasks.get_mut(&index) else {
            return;
        };
        task.next = task.schedule.next_after(from, &task.zone);
        match task.next {
            Some(next) => arm_for(self, now, index, next),
            None => {
                let message = format!(
                    "{}/{}: the cron schedule fires no more (none before year 9999)",
                    self.name, self.tasks[index].name
                );
                self.pending_logs.push((LogLevel::Warn, message));
            }
        }
    }

    pub(super) fn cron_due(&mut self, now: Now, index: usize) {
        let Some(task) = self.cron.tasks.get_mut(&index) else {
            return;
        };
        task.timer = None;
        let Some(due) = task.next else {
            return;
        };
        if until(now, due) > Duration::ZERO {
            // The wall clock went back since the timer was armed: wait for the rest.
            arm_for(self, now, index, due);
            return;
        }
        self.arm_cron(now, index, due.max(now.unix_ms()));
        let Some(task) = self.cron.tasks.get_mut(&index) else {
            return;
        };
        let fire = match (task.running, task.overlap) {
            (0, _) | (_, Overlap::Allow) => Fire::Submit,
            (_, Overlap::BufferOne) if !task.buffered => Fire::Buffer,
            _ => Fire::Skip,
        };
        match fire {
            Fire::Submit => self.submit_cron_job(now, index),
            Fire::Buffer => task.buffered = true,
            Fire::Skip => {
                task.skipped += 1;
                let message = format!(
                    "{}/{}: cron fire skipped, the previous run still runs ({} skipped so far)",
                    self.name, self.tasks[index].name, task.skipped
                );
                self.pending_logs.push((LogLevel::Info, message));
            }
        }
    }

    fn submit_cron_job(&mut self, now: Now, index: usize) {
        if self.submit_timer_job(now, index) {
            if let Some(task) = self.cron.tasks.get_mut(&index) {
                task.running += 1;
            }
        }
    }

    /// A job of task `index` ended: a buffered fire runs now.
    pub(super) fn cron_job_ended(&mut self, now: Now, index: usize) {
        let Some(task) = self.cron.tasks.get_mut(&index) else {
            return;
        };
        task.running = task.running.saturating_sub(1);
        if !task.buffered || task.running > 0 {
            return;
        }
        task.buffered = false;
        // A stopping or replaced version submits nothing more.
        let stopping = matches!(self.engine.state(), AppState::Stopping | AppState::Stopped);
        if self.started && !self.retired && !stopping {
            self.submit_cron_job(now, index);
        }
    }
}

/// How long until wall-clock time `at` (unix ms); zero if it has passed.
fn until(now: Now, at: u64) -> Duration {
    (UNIX_EPOCH + Duration::from_millis(at))
        .duration_since(now.wall)
        .unwrap_or(Duration::ZERO)
}

/// Arms task `index`'s timer for wall-clock time `at`, read on the monotonic clock.
fn arm_for(app: &mut App, now: Now, index: usize, at: u64) {
    let when = after(now.mono, until(now, at));
    let Some(task) = app.cron.tasks.get_mut(&index) else {
        return;
    };
    app.timers.cancel_slot(&mut task.timer);
    task.timer = Some(app.timers.arm(when, AppTimer::Cron(index)));
}
