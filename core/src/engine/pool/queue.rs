//! The default policy: grow with the queue.

use super::{PoolPolicy, PoolSample};

/// Grows towards `busy + ceil(queue / grow-threshold)`, several workers at once; never
/// shrinks by itself (idle workers leave after `idle-timeout`, which is the hysteresis that
/// keeps a flapping load from spawning and reaping).
#[derive(Debug, Clone)]
pub struct QueuePolicy {
    grow_threshold: usize,
}

impl QueuePolicy {
    pub fn new(grow_threshold: usize) -> Self {
        Self {
            grow_threshold: grow_threshold.max(1),
        }
    }
}

impl PoolPolicy for QueuePolicy {
    fn target(&mut self, s: &PoolSample) -> usize {
        let wanted = s.busy_workers + s.queued.div_ceil(self.grow_threshold);
        wanted.max(s.active).max(s.pool_min).min(s.pool_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sample(queued: usize, busy: usize, active: usize) -> PoolSample {
        PoolSample {
            now: Instant::now(),
            queued,
            busy_slots: busy,
            busy_workers: busy,
            ready: active,
            starting: 0,
            active,
            pool_min: 1,
            pool_limit: 10,
            concurrency: 1,
        }
    }

    #[test]
    fn grows_by_queue_over_threshold() {
        let mut p = QueuePolicy::new(10);
        assert_eq!(p.target(&sample(0, 0, 0)), 1, "pool-min");
        assert_eq!(p.target(&sample(1, 0, 0)), 1);
        assert_eq!(p.target(&sample(11, 2, 2)), 4, "2 busy + ceil(11/10)");
        assert_eq!(p.target(&sample(1000, 5, 5)), 10, "capped at pool-limit");
    }

    #[test]
    fn never_shrinks_by_itself() {
        let mut p = QueuePolicy::new(10);
        assert_eq!(p.target(&sample(0, 0, 7)), 7);
    }
}
