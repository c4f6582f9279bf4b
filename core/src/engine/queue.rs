//! The queue of waiting jobs: FIFO with urgent jobs at the front, and O(1) removal of a job
//! that leaves early (deadline, cancel) by lazy deletion.

use std::collections::VecDeque;

use crate::arena::Key;

/// Waiting jobs by key. `len` counts live entries only: it is what admission compares with
/// `queue-limit`.
#[derive(Debug, Default)]
pub(crate) struct JobQueue {
    keys: VecDeque<Key>,
    live: usize,
}

impl JobQueue {
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn push(&mut self, key: Key, urgent: bool) {
        if urgent {
            self.keys.push_front(key);
        } else {
            self.keys.push_back(key);
        }
        self.live += 1;
    }

    /// Pops the first key for which `is_live` holds, discarding stale ones on the way.
    pub fn pop(&mut self, mut is_live: impl FnMut(Key) -> bool) -> Option<Key> {
        while let Some(key) = self.keys.pop_front() {
            if is_live(key) {
                self.live -= 1;
                return Some(key);
            }
        }
        None
    }

    /// Records that a queued job left without being popped. Its key stays until `pop` or
    /// `compact` skips it; compaction keeps stale keys from outgrowing live ones.
    pub fn forget_one(&mut self, is_live: impl FnMut(&Key) -> bool) {
        self.live -= 1;
        if self.keys.len() > 2 * self.live + 64 {
            self.keys.retain(is_live);
        }
    }

    /// Drains every live key, front first.
    pub fn drain(&mut self, mut is_live: impl FnMut(Key) -> bool) -> Vec<Key> {
        let keys = self.keys.drain(..).filter(|k| is_live(*k)).collect();
        self.live = 0;
        keys
    }
}
