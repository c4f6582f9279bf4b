//! The whole check of a signed request, in an order that keeps the nonce cache honest:
//! nonce form, known user, time window (cheap refusals first), then the signature (one
//! public-key operation), and only then the nonce is remembered, so a forged request can
//! neither fill the cache nor burn a real client's nonce.

use super::error::AuthError;
use super::keys::KeyStore;
use super::replay::{check_nonce, ReplayGuard, ReplayLimits};
use super::session::SessionStore;
use super::signature;

/// What a signed request says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim<'a> {
    /// Whose key signed it.
    pub user: &'a str,
    /// When it was signed, unix milliseconds.
    pub ts: u64,
    /// Unique per request within the window.
    pub nonce: &'a str,
}

/// Signed requests accepted and refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    pub accepted: u64,
    pub unsigned: u64,
    pub unknown_user: u64,
    pub bad_nonce: u64,
    pub expired: u64,
    pub future: u64,
    pub bad_signature: u64,
    pub replayed: u64,
    pub too_many: u64,
    pub incomplete: u64,
    pub wrong_app: u64,
    pub bad_body: u64,
    pub not_allowed: u64,
}

impl AuthStats {
    /// Counts one refusal under its reason.
    pub fn count(&mut self, error: &AuthError) {
        let counter = match error {
            AuthError::Unsigned => &mut self.unsigned,
            AuthError::UnknownUser(_) => &mut self.unknown_user,
            AuthError::BadNonce(_) => &mut self.bad_nonce,
            AuthError::Expired { .. } => &mut self.expired,
            AuthError::FutureDated { .. } => &mut self.future,
            AuthError::BadSignature(_) => &mut self.bad_signature,
            AuthError::Replayed(_) => &mut self.replayed,
            AuthError::TooMany { .. } => &mut self.too_many,
            AuthError::Incomplete(_) => &mut self.incomplete,
            AuthError::WrongApp { .. } => &mut self.wrong_app,
            AuthError::BodyMismatch => &mut self.bad_body,
            AuthError::NotAllowed(_) => &mut self.not_allowed,
        };
        *counter += 1;
    }

    /// Every refusal, whatever the reason.
    pub fn refused(&self) -> u64 {
        self.unsigned
            + self.unknown_user
            + self.bad_nonce
            + self.expired
            + self.future
            + self.bad_signature
            + self.replayed
            + self.too_many
            + self.incomplete
            + self.wrong_app
            + self.bad_body
            + self.not_allowed
    }
}

/// The key store, the replay guard and the counters.
#[derive(Debug)]
pub struct Verifier {
    keys: KeyStore,
    guard: ReplayGuard,
    stats: AuthStats,
    /// Session keys (docs/security.md): opened by a signed request, bound to its user's key.
    sessions: SessionStore,
}

impl Verifier {
    /// A verifier over `keys` with these replay limits.
    pub fn new(keys: KeyStore, limits: ReplayLimits) -> Verifier {
        Verifier {
            keys,
            guard: ReplayGuard::new(limits),
            stats: AuthStats::default(),
            sessions: SessionStore::default(),
        }
    }

    /// Accepts a request whose `signature` over `signed_bytes` is valid for `claim` at
    /// `now_ms` (the node's wall clock, unix milliseconds), or says why not. Counts either way.
    pub fn verify(
        &mut self,
        claim: Claim<'_>,
        signed_bytes: &[u8],
        signature: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthError> {
        let result = self.check(claim, signed_bytes, signature, now_ms);
        match &result {
            Ok(()) => self.stats.accepted += 1,
            Err(e) => self.stats.count(e),
        }
        result
    }

    /// Counts a request refused for carrying no signature where one is required.
    pub fn refuse_unsigned(&mut self) -> AuthError {
        self.refuse(AuthError::Unsigned)
    }

    /// Counts a refusal decided outside [`Verifier::verify`] (a wrong app, a body that does
    /// not match its digest, a user the task does not allow) and gives it back.
    pub fn refuse(&mut self, error: AuthError) -> AuthError {
        self.stats.count(&error);
        error
    }

    fn check(
        &mut self,
        claim: Claim<'_>,
        signed_bytes: &[u8],
        signature: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthError> {
        check_nonce(claim.nonce)?;
        let key = self
            .keys
            .get(claim.user)
            .ok_or_else(|| AuthError::UnknownUser(claim.user.to_owned()))?;
        self.guard.check_time(claim.ts, now_ms)?;
        if !signature::verify(key, signed_bytes, signature) {
            return Err(AuthError::BadSignature(claim.user.to_owned()));
        }
        self.guard.admit(claim.user, claim.ts, claim.nonce, now_ms)
    }

    /// The key store, to list keys.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The key store, to add, replace and remove keys as the key folder changes.
    pub fn keys_mut(&mut self) -> &mut KeyStore {
        &mut self.keys
    }

    /// The nonce cache, to read its size.
    pub fn guard(&self) -> &ReplayGuard {
        &self.guard
    }

    /// The counters.
    pub fn stats(&self) -> AuthStats {
        self.stats
    }

    /// The sessions, to list them.
    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// The sessions, to configure, open, check and drop them.
    pub fn sessions_mut(&mut self) -> &mut SessionStore {
        &mut self.sessions
    }

    /// The key store and the sessions together: a session is opened with its user's key.
    pub fn keys_and_sessions(&mut self) -> (&KeyStore, &mut SessionStore) {
        (&self.keys, &mut self.sessions)
    }
}
