//! recurring-timer and drifting-timer: jobs made by time, replies published.

use std::time::{Duration, Instant};

use super::driver::{Cx, Driver, DriverInput};
use crate::engine::ReplyEvent;
use crate::manifest::keys::{interval, Ctx, Obj, Problems};
use crate::manifest::{Task, TaskKind};
use crate::time::after;
use crate::timers::TimerHandle;

/// Its one timer's token.
const DUE: u64 = 0;

/// recurring-timer: `interval` (ms, required), `immediate` (default false).
pub(crate) fn parse_recurring(o: &mut Obj<'_>, _: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::RecurringTimer {
        interval: interval(o, p),
        immediate: o.bool("immediate", p).unwrap_or(false),
    }
}

/// drifting-timer: `interval` (ms, required).
pub(crate) fn parse_drifting(o: &mut Obj<'_>, _: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::DriftingTimer {
        interval: interval(o, p),
    }
}

/// Fires every `interval` on a fixed grid; runs may overlap.
#[derive(Debug)]
pub(super) struct Recurring {
    interval: Duration,
    immediate: bool,
    timer: Option<TimerHandle>,
    /// The grid's next point.
    next_due: Option<Instant>,
}

pub(super) fn recurring(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::RecurringTimer {
        interval,
        immediate,
    } = task.kind
    else {
        return None;
    };
    Some(Box::new(Recurring {
        interval,
        immediate,
        timer: None,
        next_due: None,
    }))
}

impl Recurring {
    fn arm(&mut self, cx: &mut Cx<'_>, at: Instant) {
        cx.cancel_timer(&mut self.timer);
        self.next_due = Some(at);
        self.timer = cx.arm(at, DUE);
    }
}

impl Driver for Recurring {
    fn start(&mut self, cx: &mut Cx<'_>) {
        let first = if self.immediate {
            cx.now.mono
        } else {
            after(cx.now.mono, self.interval)
        };
        self.arm(cx, first);
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        let DriverInput::Timer { .. } = input else {
            return;
        };
        self.timer = None;
        let now = cx.now.mono;
        let due = self.next_due.unwrap_or(now);
        // Stay on the grid; after a stall, skip the points already missed rather than firing
        // a burst to catch up.
        let mut next = after(due, self.interval);
        if next <= now {
            let step = self.interval.as_nanos().max(1);
            let into = now.saturating_duration_since(due).as_nanos() % step;
            next = after(now, Duration::from_nanos((step - into) as u64));
        }
        self.arm(cx, next);
        cx.submit_published(0, Vec::new(), "timer job");
    }

    fn reply(&mut self, cx: &mut Cx<'_>, _token: u64, event: ReplyEvent) {
        cx.publish_reply(event);
    }
}

/// Fires `interval` after the previous run ended; never overlaps.
#[derive(Debug)]
pub(super) struct Drifting {
    interval: Duration,
    timer: Option<TimerHandle>,
}

pub(super) fn drifting(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::DriftingTimer { interval } = task.kind else {
        return None;
    };
    Some(Box::new(Drifting {
        interval,
        timer: None,
    }))
}

impl Drifting {
    fn arm(&mut self, cx: &mut Cx<'_>) {
        cx.cancel_timer(&mut self.timer);
        self.timer = cx.arm(after(cx.now.mono, self.interval), DUE);
    }
}

impl Driver for Drifting {
    fn start(&mut self, cx: &mut Cx<'_>) {
        self.arm(cx);
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        let DriverInput::Timer { .. } = input else {
            return;
        };
        self.timer = None;
        // A refused job never ends, so the drift starts from the refusal.
        if !cx.submit_published(0, Vec::new(), "timer job") {
            self.arm(cx);
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, _token: u64, event: ReplyEvent) {
        let terminal = event.is_terminal();
        cx.publish_reply(event);
        // The interval counts from the end of the run; a stopping or replaced version
        // submits nothing more.
        if terminal && cx.accepting() {
            self.arm(cx);
        }
    }
}
