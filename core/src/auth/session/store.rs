//! The node's sessions: each has a user, a key, an end (its lifetime from the open) and an
//! idle limit (from its last accepted request), and the window of sequence numbers seen.
//!
//! Bounds: at most [`SessionLimits::per_user`] sessions per user (a new one pushes out the
//! user's least recently used: only the user can open sessions, so only they lose one) and
//! [`SessionLimits::total`] in all (expired ones are forgotten first; then a new session is
//! refused with 503, never someone else's pushed out). Memory is bounded by
//! [`SessionLimits::memory_bound_bytes`]. A user's sessions go when their key is removed or
//! replaced ([`SessionStore::drop_user`]).
//!
//! Checks, cheapest first: the session is known, not expired, the MAC verifies (HMAC-SHA-256,
//! constant time), and only then the sequence number is taken, so a forged request cannot
//! burn a client's numbers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsa::Oaep;
use sha2::Sha256;

use super::drbg::{Drbg, Seed};
use super::error::{SessionError, SessionStats};
use super::mac_ok;
use super::window::{SeqRefusal, SeqWindow};
use crate::auth::keys::{PublicKey, MAX_USER_NAME};
use crate::codec::native_session::{SessionAuth, SessionGrant, SESSION_ID_LEN, SESSION_KEY_LEN};
use crate::time::Now;

/// How long sessions live and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// From the open; a session is never used after it (`--session-ttl`).
    pub lifetime: Duration,
    /// From the last accepted request (`--session-idle`).
    pub idle: Duration,
    /// The most sessions of one user.
    pub per_user: usize,
    /// The most sessions in all.
    pub total: usize,
}

impl Default for SessionLimits {
    /// 10 minutes, 2 minutes idle, 256 per user, 16 384 in all (≈ 6 MiB at most).
    fn default() -> Self {
        SessionLimits {
            lifetime: Duration::from_secs(600),
            idle: Duration::from_secs(120),
            per_user: 256,
            total: 16_384,
        }
    }
}

/// An upper bound of one session's bytes: the id twice (key and value), the user (a boxed
/// name of at most [`MAX_USER_NAME`] bytes), the key, three instants, the window, and the
/// hash map's per-entry overhead counted generously as 64 bytes.
const ENTRY_BOUND: usize = 2 * SESSION_ID_LEN
    + (16 + MAX_USER_NAME)
    + SESSION_KEY_LEN
    + 3 * std::mem::size_of::<Instant>()
    + std::mem::size_of::<SeqWindow>()
    + 64;

impl SessionLimits {
    /// An upper bound of the bytes the sessions hold: `total` × a bound per session.
    pub fn memory_bound_bytes(&self) -> usize {
        self.total * ENTRY_BOUND
    }
}

#[derive(Debug)]
struct Session {
    user: Box<str>,
    key: [u8; SESSION_KEY_LEN],
    ends: Instant,
    last_used: Instant,
    window: SeqWindow,
}

impl Session {
    fn expired(&self, now: Instant, idle: Duration) -> bool {
        now >= self.ends || now >= self.last_used + idle
    }
}

/// The sessions, the generator that makes their ids and keys, and the counters.
#[derive(Debug)]
pub struct SessionStore {
    limits: SessionLimits,
    drbg: Option<Drbg>,
    draws: u64,
    sessions: HashMap<[u8; SESSION_ID_LEN], Session>,
    stats: SessionStats,
}

impl Default for SessionStore {
    /// No seed: sessions cannot be opened (503) until one is given.
    fn default() -> Self {
        SessionStore::new(SessionLimits::default(), None)
    }
}

impl SessionStore {
    /// An empty store; without a seed every session-open is refused ([`SessionError::NoSeed`]).
    pub fn new(limits: SessionLimits, seed: Option<&Seed>) -> SessionStore {
        SessionStore {
            limits,
            drbg: seed.map(Drbg::new),
            draws: 0,
            sessions: HashMap::new(),
            stats: SessionStats::default(),
        }
    }

    /// Opens a session for `user`, whose signed session-open verified, its key sealed to
    /// `key` with RSA-OAEP (SHA-256). Counts either way.
    pub fn open(
        &mut self,
        user: &str,
        key: &PublicKey,
        now: Now,
    ) -> Result<SessionGrant, SessionError> {
        let result = self.try_open(user, key, now);
        match &result {
            Ok(_) => self.stats.opened += 1,
            Err(e) => self.stats.count(e),
        }
        result
    }

    fn try_open(
        &mut self,
        user: &str,
        key: &PublicKey,
        now: Now,
    ) -> Result<SessionGrant, SessionError> {
        let Some(drbg) = self.drbg.as_mut() else {
            return Err(SessionError::NoSeed);
        };
        self.draws += 1;
        let mut extra = self.draws.to_le_bytes().to_vec();
        extra.extend_from_slice(&now.unix_ms().to_le_bytes());
        drbg.mix(&extra);
        let mut id = [0u8; SESSION_ID_LEN];
        let mut session_key = [0u8; SESSION_KEY_LEN];
        drbg.fill(&mut id);
        drbg.fill(&mut session_key);
        let wrapped = (key.rsa())
            .encrypt(drbg, Oaep::new::<Sha256>(), &session_key)
            .map_err(|e| SessionError::Wrap(e.to_string()))?;
        self.make_room(user, now.mono)?;
        self.sessions.insert(
            id,
            Session {
                user: user.into(),
                key: session_key,
                ends: now.mono + self.limits.lifetime,
                last_used: now.mono,
                window: SeqWindow::default(),
            },
        );
        let lifetime_ms = u64::try_from(self.limits.lifetime.as_millis()).unwrap_or(u64::MAX);
        Ok(SessionGrant {
            session: Bytes::copy_from_slice(&id),
            wrapped_key: Bytes::from(wrapped),
            expires_ms: now.unix_ms().saturating_add(lifetime_ms),
        })
    }

    /// Room for one more session of `user`: the user's least recently used goes past the
    /// per-user bound; expired sessions go past the total, and then a new one is refused.
    fn make_room(&mut self, user: &str, now: Instant) -> Result<(), SessionError> {
        let idle = self.limits.idle;
        let mine: Vec<([u8; SESSION_ID_LEN], Instant, bool)> = (self.sessions.iter())
            .filter(|(_, s)| &*s.user == user)
            .map(|(id, s)| (*id, s.last_used, s.expired(now, idle)))
            .collect();
        if mine.len() >= self.limits.per_user {
            for (id, _, _) in mine.iter().filter(|(_, _, expired)| *expired) {
                self.sessions.remove(id);
            }
            let left = mine.iter().filter(|(_, _, expired)| !expired).count();
            if left >= self.limits.per_user {
                if let Some((id, _, _)) = mine
                    .iter()
                    .filter(|(_, _, expired)| !expired)
                    .min_by_key(|(_, used, _)| *used)
                {
                    self.sessions.remove(id);
                    self.stats.evicted += 1;
                }
            }
        }
        if self.sessions.len() >= self.limits.total {
            self.purge(now);
        }
        if self.sessions.len() >= self.limits.total {
            return Err(SessionError::TooMany(self.limits.total));
        }
        Ok(())
    }

    /// Checks a request in a session: `maced` is the open without its MAC
    /// ([`crate::codec::native::NativeMessage::decode_signed`]). Returns the session's user,
    /// or why not; counts either way. The app, the task's `users` and the body are the
    /// caller's to check ([`SessionStore::refuse`] counts what they refuse).
    pub fn check(
        &mut self,
        auth: &SessionAuth,
        maced: &[u8],
        now: Now,
    ) -> Result<String, SessionError> {
        let result = self.try_check(auth, maced, now.mono);
        match &result {
            Ok(_) => self.stats.accepted += 1,
            Err(e) => self.stats.count(e),
        }
        result
    }

    fn try_check(
        &mut self,
        auth: &SessionAuth,
        maced: &[u8],
        now: Instant,
    ) -> Result<String, SessionError> {
        let id: [u8; SESSION_ID_LEN] = auth.session[..]
            .try_into()
            .map_err(|_| SessionError::Unknown)?;
        let Some(session) = self.sessions.get_mut(&id) else {
            return Err(SessionError::Unknown);
        };
        if session.expired(now, self.limits.idle) {
            self.sessions.remove(&id);
            return Err(SessionError::Expired);
        }
        if !mac_ok(&session.key, maced, &auth.mac) {
            return Err(SessionError::BadMac);
        }
        session.window.admit(auth.seq).map_err(|why| match why {
            SeqRefusal::Seen => SessionError::Replayed(auth.seq),
            SeqRefusal::Zero => SessionError::BadSeq {
                seq: 0,
                why: "sequence numbers start at 1".into(),
            },
            SeqRefusal::TooOld { newest } => SessionError::BadSeq {
                seq: auth.seq,
                why: format!(
                    "more than {} behind the newest ({newest}): replayed or too late",
                    super::window::WINDOW
                ),
            },
        })?;
        session.last_used = now;
        Ok(session.user.to_string())
    }

    /// Counts a refusal decided outside [`SessionStore::check`] and gives it back.
    pub fn refuse(&mut self, error: SessionError) -> SessionError {
        self.stats.count(&error);
        error
    }

    /// Drops every session of `user` (their key was removed or replaced); how many went.
    pub fn drop_user(&mut self, user: &str) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| &*s.user != user);
        let dropped = before - self.sessions.len();
        self.stats.dropped += dropped as u64;
        dropped
    }

    /// Forgets expired sessions; how many went.
    pub fn purge(&mut self, now: Instant) -> usize {
        let before = self.sessions.len();
        let idle = self.limits.idle;
        self.sessions.retain(|_, s| !s.expired(now, idle));
        before - self.sessions.len()
    }

    /// Sessions held (some may have expired and not yet been forgotten).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions held for `user`.
    pub fn len_for(&self, user: &str) -> usize {
        self.sessions.values().filter(|s| &*s.user == user).count()
    }

    /// The limits in force.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// True when the store can open sessions (it has a seed).
    pub fn can_open(&self) -> bool {
        self.drbg.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }
}
