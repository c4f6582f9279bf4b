//! Time as an input.
//!
//! The core never reads a clock. Every call that may depend on time takes a [`Now`]: the
//! monotonic instant drives timeouts and timers, the wall-clock time is only for what users
//! see as dates (pubsub envelopes, cron, signatures' time windows).

use std::ops::Add;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One reading of both clocks, taken by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: all timeouts and timers are measured on it.
    pub mono: Instant,
    /// Wall-clock time, as the system gives it; it may jump.
    pub wall: SystemTime,
}

impl Now {
    pub fn new(mono: Instant, wall: SystemTime) -> Self {
        Self { mono, wall }
    }

    /// Wall-clock milliseconds since the Unix epoch (0 for a clock set before 1970).
    pub fn unix_ms(&self) -> u64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

impl Add<Duration> for Now {
    type Output = Now;

    /// Both clocks advance together, as they do when nobody changes the system time.
    fn add(self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }
}

/// The longest wait the core ever arms: a century. Durations come from manifests and clients;
/// clamping them keeps `Instant` arithmetic from overflowing (which would panic) while
/// meaning "never" for any practical purpose.
pub const MAX_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `at + d`, with `d` clamped to [`MAX_WAIT`] so that no input can overflow the clock.
pub fn after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d.min(MAX_WAIT)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_never_overflows() {
        let t = Instant::now();
        assert_eq!(after(t, Duration::from_secs(1)), t + Duration::from_secs(1));
        assert_eq!(after(t, Duration::MAX), t + MAX_WAIT);
    }
}
