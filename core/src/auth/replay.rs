//! The replay guard: a signed request is fresh when its timestamp is within the window of the
//! node's clock and its nonce was not seen from the same user within the window.
//!
//! A nonce is remembered until its request's timestamp falls out of the window (`now - ts >
//! window`); from then on a replay is refused as expired, so forgetting it is safe. A nonce
//! therefore lives at most two windows of node time (a timestamp up to one window ahead,
//! kept until one window behind).
//!
//! Memory is bounded: at most [`ReplayLimits::per_user`] nonces per user and
//! [`ReplayLimits::total`] in all, each at most [`MAX_NONCE`] bytes. When a bound is reached
//! the request is refused ([`AuthError::TooMany`]), never admitted by forgetting an older
//! nonce, which would let that one be replayed. Only requests whose signature verified reach
//! the guard, so a stranger cannot fill it.

use std::collections::{BTreeSet, HashMap};

use super::error::AuthError;

/// The shortest nonce, in characters.
pub const MIN_NONCE: usize = 16;
/// The longest nonce, in characters (printable ASCII, so also bytes).
pub const MAX_NONCE: usize = 64;

/// The window and the cache bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// How far a timestamp may be from the node's clock, either way, in milliseconds.
    pub window_ms: u64,
    /// The most nonces remembered for one user.
    pub per_user: usize,
    /// The most nonces remembered for all users together.
    pub total: usize,
}

impl Default for ReplayLimits {
    /// ±30 s; 16 384 nonces per user (about 270 signed requests a second sustained over the
    /// two windows a nonce may live) and 131 072 in all.
    fn default() -> Self {
        ReplayLimits {
            window_ms: 30_000,
            per_user: 16_384,
            total: 131_072,
        }
    }
}

impl ReplayLimits {
    /// An upper bound of the bytes the cache's entries hold at most: each nonce is stored
    /// twice (lookup and expiry order), with its timestamp and the collections' per-entry
    /// overhead (counted generously as 64 bytes).
    pub fn memory_bound_bytes(&self) -> usize {
        self.total * (2 * (MAX_NONCE + 8) + 64)
    }
}

/// Checks that a nonce is [`MIN_NONCE`] to [`MAX_NONCE`] printable ASCII characters.
pub fn check_nonce(nonce: &str) -> Result<(), AuthError> {
    if !(MIN_NONCE..=MAX_NONCE).contains(&nonce.len()) {
        return Err(AuthError::BadNonce("must have 16 to 64 characters"));
    }
    if !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::BadNonce(
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Seen {
    by_nonce: HashMap<Box<str>, u64>,
    by_ts: BTreeSet<(u64, Box<str>)>,
}

impl Seen {
    fn forget_before(&mut self, oldest_kept_ts: u64) -> usize {
        let mut forgotten = 0;
        while let Some(first) = self.by_ts.first() {
            if first.0 >= oldest_kept_ts {
                break;
            }
            let (_, nonce) = self.by_ts.pop_first().expect("just seen");
            self.by_nonce.remove(&nonce);
            forgotten += 1;
        }
        forgotten
    }
}

/// The time window and the per-user nonce cache. Time comes in as an argument.
#[derive(Debug)]
pub struct ReplayGuard {
    limits: ReplayLimits,
    users: HashMap<Box<str>, Seen>,
    total: usize,
}

impl ReplayGuard {
    /// An empty guard with these limits.
    pub fn new(limits: ReplayLimits) -> ReplayGuard {
        ReplayGuard {
            limits,
            users: HashMap::new(),
            total: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ReplayLimits {
        self.limits
    }

    /// Refuses a timestamp outside `now_ms ± window`.
    pub fn check_time(&self, ts: u64, now_ms: u64) -> Result<(), AuthError> {
        let window_ms = self.limits.window_ms;
        if ts < now_ms && now_ms - ts > window_ms {
            return Err(AuthError::Expired {
                age_ms: now_ms - ts,
                window_ms,
            });
        }
        if ts > now_ms && ts - now_ms > window_ms {
            return Err(AuthError::FutureDated {
                ahead_ms: ts - now_ms,
                window_ms,
            });
        }
        Ok(())
    }

    /// Checks the time and remembers the nonce; refuses a replay, an expired or future
    /// timestamp, and a request over the cache bounds. Call only after the signature verified.
    pub fn admit(
        &mut self,
        user: &str,
        ts: u64,
        nonce: &str,
        now_ms: u64,
    ) -> Result<(), AuthError> {
        check_nonce(nonce)?;
        self.check_time(ts, now_ms)?;
        self.forget_expired(user, now_ms);
        let limits = self.limits;
        let seen = self.users.entry(user.into()).or_default();
        if seen.by_nonce.contains_key(nonce) {
            return Err(AuthError::Replayed(user.to_owned()));
        }
        if seen.by_nonce.len() >= limits.per_user || self.total >= limits.total {
            return Err(AuthError::TooMany {
                user: user.to_owned(),
                limit: limits.per_user.min(limits.total),
            });
        }
        seen.by_nonce.insert(nonce.into(), ts);
        seen.by_ts.insert((ts, nonce.into()));
        self.total += 1;
        Ok(())
    }

    /// Forgets what no request can replay any more: `user`'s nonces, and when the cache is
    /// full, everyone's.
    fn forget_expired(&mut self, user: &str, now_ms: u64) {
        let oldest_kept = now_ms.saturating_sub(self.limits.window_ms);
        if let Some(seen) = self.users.get_mut(user) {
            self.total -= seen.forget_before(oldest_kept);
        }
        if self.total >= self.limits.total {
            for seen in self.users.values_mut() {
                self.total -= seen.forget_before(oldest_kept);
            }
            self.users.retain(|_, s| !s.by_nonce.is_empty());
        }
    }

    /// How many nonces are remembered, for all users.
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many nonces are remembered for `user`.
    pub fn len_for(&self, user: &str) -> usize {
        self.users.get(user).map_or(0, |s| s.by_nonce.len())
    }
}
