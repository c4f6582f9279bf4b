//! A policy in the spirit of uWSGI's "cheaper busyness": it measures the busy share of the
//! pool's job slots averaged over a window, adds workers when that share is high or jobs
//! wait, and retires one when it stays low for several windows in a row.

use std::time::{Duration, Instant};

use super::{PoolPolicy, PoolSample};
use crate::engine::config::BusynessConfig;
use crate::time::after;

#[derive(Debug, Clone)]
pub struct BusynessPolicy {
    config: BusynessConfig,
    window_start: Option<Instant>,
    last_change: Option<Instant>,
    busy_slots: usize,
    /// Busy slots integrated over time in this window, in slot-nanoseconds.
    busy_integral: u128,
    /// Slots available integrated over time in this window, in slot-nanoseconds.
    capacity_integral: u128,
    capacity: usize,
    low_windows: u32,
    /// Whether the pool has anything to watch; an idle pool at its floor needs no wake-ups.
    watching: bool,
}

impl BusynessPolicy {
    pub fn new(config: BusynessConfig) -> Self {
        Self {
            config,
            window_start: None,
            last_change: None,
            busy_slots: 0,
            busy_integral: 0,
            capacity_integral: 0,
            capacity: 0,
            low_windows: 0,
            watching: false,
        }
    }

    fn integrate(&mut self, now: Instant) {
        if let Some(last) = self.last_change {
            let dt = now.saturating_duration_since(last).as_nanos();
            self.busy_integral += dt * self.busy_slots as u128;
            self.capacity_integral += dt * self.capacity as u128;
        }
        self.last_change = Some(now);
    }

    fn window(&self) -> Duration {
        self.config.window.max(Duration::from_millis(1))
    }
}

impl PoolPolicy for BusynessPolicy {
    fn target(&mut self, s: &PoolSample) -> usize {
        self.integrate(s.now);
        self.busy_slots = s.busy_slots;
        self.capacity = s.ready * s.concurrency.max(1);
        let window_start = *self.window_start.get_or_insert(s.now);
        // Decisions are steps from the pool as it is; between them the pool holds.
        let mut target = s.active;
        // Waiting jobs with nobody to run them: no window to wait for.
        if s.queued > 0 && s.active == 0 {
            target = self.config.step.max(1);
        }
        if s.now >= after(window_start, self.window()) {
            let busy = if self.capacity_integral == 0 {
                0.0
            } else {
                self.busy_integral as f64 / self.capacity_integral as f64
            };
            if busy > self.config.high || s.queued > 0 {
                target = s.active + self.config.step.max(1);
                self.low_windows = 0;
            } else if busy < self.config.low {
                self.low_windows += 1;
                if self.low_windows >= self.config.backoff.max(1) {
                    target = s.active.saturating_sub(1);
                    self.low_windows = 0;
                }
            } else {
                self.low_windows = 0;
            }
            self.window_start = Some(s.now);
            self.busy_integral = 0;
            self.capacity_integral = 0;
        }
        self.watching = s.active > s.pool_min || s.queued > 0 || s.busy_slots > 0;
        target.max(s.pool_min).min(s.pool_limit)
    }

    fn next_wake(&self) -> Option<Instant> {
        if !self.watching {
            return None;
        }
        self.window_start.map(|start| after(start, self.window()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(now: Instant, queued: usize, busy: usize, ready: usize) -> PoolSample {
        PoolSample {
            now,
            queued,
            busy_slots: busy,
            busy_workers: busy,
            ready,
            starting: 0,
            active: ready,
            pool_min: 1,
            pool_limit: 8,
            concurrency: 1,
        }
    }

    fn policy() -> BusynessPolicy {
        BusynessPolicy::new(BusynessConfig {
            window: Duration::from_secs(1),
            high: 0.5,
            low: 0.25,
            backoff: 2,
            step: 2,
        })
    }

    #[test]
    fn grows_when_busy_over_a_window() {
        let t0 = Instant::now();
        let mut p = policy();
        assert_eq!(
            p.target(&sample(t0, 0, 2, 2)),
            2,
            "holds until a window has passed"
        );
        let t = t0 + Duration::from_secs(1);
        assert_eq!(p.target(&sample(t, 0, 2, 2)), 4, "fully busy: grow by step");
        assert_eq!(p.next_wake(), Some(t + Duration::from_secs(1)));
    }

    #[test]
    fn shrinks_after_backoff_quiet_windows() {
        let t0 = Instant::now();
        let mut p = policy();
        p.target(&sample(t0, 0, 0, 4));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(p.target(&sample(t1, 0, 0, 4)), 4, "one quiet window: hold");
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(
            p.target(&sample(t2, 0, 0, 4)),
            3,
            "second quiet window: one fewer"
        );
    }

    #[test]
    fn cold_start_with_waiting_jobs_spawns_at_once() {
        let t0 = Instant::now();
        let mut p = policy();
        let mut s = sample(t0, 3, 0, 0);
        s.pool_min = 0;
        assert_eq!(p.target(&s), 2);
    }

    #[test]
    fn an_idle_pool_at_its_floor_sleeps() {
        let t0 = Instant::now();
        let mut p = policy();
        p.target(&sample(t0, 0, 0, 1));
        assert_eq!(p.next_wake(), None);
    }
}
