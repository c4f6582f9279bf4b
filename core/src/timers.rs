//! A set of pending timers, ordered by due time, each cancellable by its handle.
//!
//! Ties are broken by insertion order so that the same inputs always fire timers in the
//! same order (determinism is part of the core's contract).

use std::collections::BTreeMap;
use std::time::Instant;

/// Names one armed timer; cancelling a fired or cancelled timer is a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerHandle {
    at: Instant,
    seq: u64,
}

impl TimerHandle {
    pub fn at(&self) -> Instant {
        self.at
    }
}

/// Timers carrying a payload `K` that says what to do when they fire.
#[derive(Debug)]
pub struct Timers<K> {
    pending: BTreeMap<TimerHandle, K>,
    seq: u64,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Self {
            pending: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<K> Timers<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn arm(&mut self, at: Instant, what: K) -> TimerHandle {
        let handle = TimerHandle { at, seq: self.seq };
        self.seq += 1;
        self.pending.insert(handle, what);
        handle
    }

    pub fn cancel(&mut self, handle: TimerHandle) -> Option<K> {
        self.pending.remove(&handle)
    }

    /// Cancels the timer in `slot`, if any, and leaves the slot empty.
    pub fn cancel_slot(&mut self, slot: &mut Option<TimerHandle>) {
        if let Some(handle) = slot.take() {
            self.pending.remove(&handle);
        }
    }

    /// When the earliest timer is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.keys().next().map(|h| h.at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerHandle, K)> {
        let entry = self.pending.first_entry()?;
        if entry.key().at > now {
            return None;
        }
        let handle = *entry.key();
        Some((handle, entry.remove()))
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_time_order_then_insertion_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.arm(t0 + Duration::from_secs(2), "late");
        timers.arm(t0 + Duration::from_secs(1), "first");
        timers.arm(t0 + Duration::from_secs(1), "second");
        assert_eq!(timers.next_due(), Some(t0 + Duration::from_secs(1)));
        assert!(timers.pop_due(t0).is_none());
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(5)))
            .map(|(_, k)| k)
            .collect();
        assert_eq!(fired, vec!["first", "second", "late"]);
    }

    #[test]
    fn cancelled_timers_never_fire() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let mut slot = Some(timers.arm(t0, 1));
        timers.arm(t0, 2);
        timers.cancel_slot(&mut slot);
        timers.cancel_slot(&mut slot);
        assert_eq!(timers.pop_due(t0).map(|(_, k)| k), Some(2));
        assert!(timers.is_empty());
    }
}
