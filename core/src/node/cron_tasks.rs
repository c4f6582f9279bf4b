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

use std::time::{Duration, UNIX_EPOCH};

use super::driver::{Cx, Driver, DriverInput};
use crate::cron::{CronSchedule, CronZone};
use crate::engine::ReplyEvent;
use crate::manifest::keys::{value, Ctx, Obj, Problems};
use crate::manifest::{Overlap, Task, TaskKind, DEFAULT_TIMEZONE};
use crate::process::LogLevel;
use crate::time::{after, Now};
use crate::timers::TimerHandle;

/// One cron task of one app version.
#[derive(Debug)]
pub(super) struct Cron {
    schedule: String,
    timezone: String,
    overlap: Overlap,
    /// The schedule and zone, parsed when the app starts.
    parsed: Option<(CronSchedule, CronZone)>,
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

const OVERLAPS: &[(&str, Overlap)] = &[
    ("skip", Overlap::Skip),
    ("buffer-one", Overlap::BufferOne),
    ("allow", Overlap::Allow),
];

/// cron: `schedule` (required), `timezone`, `overlap`. The driver's own parser judges the
/// schedule and the zone, so what validates here runs.
pub(crate) fn parse(o: &mut Obj<'_>, _: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    let schedule = o.req("schedule", p, |v, at, p| {
        let s = value::non_empty(v, at, p)?;
        match CronSchedule::parse(s) {
            Ok(_) => Some(s.to_owned()),
            Err(e) => {
                p.add(at, e.to_string());
                None
            }
        }
    });
    let timezone = o.opt("timezone", p, |v, at, p| {
        let s = value::non_empty(v, at, p)?;
        match CronZone::get(s) {
            Ok(_) => Some(s.to_owned()),
            Err(e) => {
                p.add(at, e.to_string());
                None
            }
        }
    });
    TaskKind::Cron {
        schedule: schedule.unwrap_or_default(),
        timezone: timezone.unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned()),
        overlap: o
            .opt("overlap", p, |v, at, p| value::choice(v, at, OVERLAPS, p))
            .unwrap_or_default(),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::Cron {
        schedule,
        timezone,
        overlap,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(Cron {
        schedule: schedule.clone(),
        timezone: timezone.clone(),
        overlap: *overlap,
        parsed: None,
        next: None,
        timer: None,
        running: 0,
        buffered: false,
        skipped: 0,
    }))
}

impl Driver for Cron {
    fn start(&mut self, cx: &mut Cx<'_>) {
        // The manifest was validated with the same parser, so this only fails for a manifest
        // built by hand.
        let parsed = CronSchedule::parse(&self.schedule)
            .and_then(|s| Ok((s, CronZone::get(&self.timezone)?)));
        match parsed {
            Ok(parsed) => {
                self.parsed = Some(parsed);
                let from = cx.now.unix_ms();
                self.arm_after(cx, from);
            }
            Err(e) => {
                let message = format!(
                    "{}/{}: cron task not run: {e}",
                    cx.app_name(),
                    cx.task_name()
                );
                cx.log(LogLevel::Error, message);
            }
        }
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        if let DriverInput::Timer { .. } = input {
            self.due(cx);
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, _token: u64, event: ReplyEvent) {
        let terminal = event.is_terminal();
        cx.publish_reply(event);
        if terminal {
            self.job_ended(cx);
        }
    }
}

impl Cron {
    /// Arms the timer for the first fire strictly after `from` (unix ms).
    fn arm_after(&mut self, cx: &mut Cx<'_>, from: u64) {
        let Some((schedule, zone)) = &self.parsed else {
            return;
        };
        self.next = schedule.next_after(from, zone);
        match self.next {
            Some(next) => self.arm_for(cx, next),
            None => {
                let message = format!(
                    "{}/{}: the cron schedule fires no more (none before year 9999)",
                    cx.app_name(),
                    cx.task_name()
                );
                cx.log(LogLevel::Warn, message);
            }
        }
    }

    /// Arms the timer for wall-clock time `at`, read on the monotonic clock.
    fn arm_for(&mut self, cx: &mut Cx<'_>, at: u64) {
        let when = after(cx.now.mono, until(cx.now, at));
        cx.cancel_timer(&mut self.timer);
        self.timer = cx.arm(when, 0);
    }

    fn due(&mut self, cx: &mut Cx<'_>) {
        self.timer = None;
        let Some(due) = self.next else {
            return;
        };
        if until(cx.now, due) > Duration::ZERO {
            // The wall clock went back since the timer was armed: wait for the rest.
            self.arm_for(cx, due);
            return;
        }
        let from = due.max(cx.now.unix_ms());
        self.arm_after(cx, from);
        let fire = match (self.running, self.overlap) {
            (0, _) | (_, Overlap::Allow) => Fire::Submit,
            (_, Overlap::BufferOne) if !self.buffered => Fire::Buffer,
            _ => Fire::Skip,
        };
        match fire {
            Fire::Submit => self.submit(cx),
            Fire::Buffer => self.buffered = true,
            Fire::Skip => {
                self.skipped += 1;
                let message = format!(
                    "{}/{}: cron fire skipped, the previous run still runs ({} skipped so far)",
                    cx.app_name(),
                    cx.task_name(),
                    self.skipped
                );
                cx.log(LogLevel::Info, message);
            }
        }
    }

    fn submit(&mut self, cx: &mut Cx<'_>) {
        if cx.submit_published(0, Vec::new(), "timer job") {
            self.running += 1;
        }
    }

    /// A job of the task ended: a buffered fire runs now.
    fn job_ended(&mut self, cx: &mut Cx<'_>) {
        self.running = self.running.saturating_sub(1);
        if !self.buffered || self.running > 0 {
            return;
        }
        self.buffered = false;
        // A stopping or replaced version submits nothing more.
        if cx.accepting() {
            self.submit(cx);
        }
    }
}

/// How long until wall-clock time `at` (unix ms); zero if it has passed.
fn until(now: Now, at: u64) -> Duration {
    (UNIX_EPOCH + Duration::from_millis(at))
        .duration_since(now.wall)
        .unwrap_or(Duration::ZERO)
}
