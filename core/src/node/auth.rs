//! Signed control requests on the node: the control endpoint's auth mode, the key store the
//! runtime keeps in step with the key folder (`Input::KeySet`, `Input::KeyRemoved`), and the
//! `keys` listing. The checks themselves are [`crate::auth`]; docs/security.md has the rules.

use serde_json::{json, Value};

use super::control::Requester;
use super::{Input, Node};
use crate::auth::{AuthError, Claim, KeyStore, PublicKey, ReplayLimits, Verifier};
use crate::control::Signed;
use crate::process::LogLevel;
use crate::status;
use crate::time::Now;

pub use crate::auth::mode::{is_local_address, AuthMode};

/// The node's verifier and the control endpoint's mode.
#[derive(Debug)]
pub(super) struct AuthState {
    pub(super) control_mode: AuthMode,
    pub(super) verifier: Verifier,
}

impl AuthState {
    pub(super) fn new(
        control_mode: Option<AuthMode>,
        control: &[String],
        limits: ReplayLimits,
    ) -> Self {
        AuthState {
            control_mode: control_mode
                .unwrap_or_else(|| AuthMode::default_for(control.iter().map(String::as_str))),
            verifier: Verifier::new(KeyStore::new(), limits),
        }
    }
}

impl AuthState {
    /// Session keys' limits and the seed their ids and keys come from.
    pub(super) fn configure_sessions(
        &mut self,
        limits: crate::auth::session::SessionLimits,
        seed: Option<&crate::auth::session::Seed>,
    ) {
        *self.verifier.sessions_mut() = crate::auth::session::SessionStore::new(limits, seed);
    }
}

impl Node {
    /// Handles `Input::KeySet` and `Input::KeyRemoved`; other inputs are not for here.
    pub(super) fn key_input(&mut self, input: Input) {
        match input {
            Input::KeySet { user, pem } => {
                let before =
                    (self.auth.verifier.keys().get(&user)).map(|k| k.fingerprint().to_owned());
                match self.auth.verifier.keys_mut().set_pem(&user, &pem) {
                    Ok(key) => {
                        let message = format!("key of {user:?} set: {}", key.fingerprint());
                        let replaced = before.is_some_and(|b| b != key.fingerprint());
                        self.log(LogLevel::Info, message);
                        if replaced {
                            self.drop_sessions(&user);
                        }
                    }
                    Err(error) => {
                        let message = format!("key of {user:?} not taken: {error}");
                        self.log(LogLevel::Warn, message);
                    }
                }
            }
            Input::KeyRemoved { user } if self.auth.verifier.keys_mut().remove(&user) => {
                self.log(LogLevel::Info, format!("key of {user:?} removed"));
                self.drop_sessions(&user);
            }
            _ => {}
        }
    }

    /// Drops `user`'s sessions: their key is gone or replaced, so what it vouched for goes.
    fn drop_sessions(&mut self, user: &str) {
        let dropped = self.auth.verifier.sessions_mut().drop_user(user);
        if dropped > 0 {
            self.log(
                LogLevel::Info,
                format!("{dropped} session(s) of {user:?} dropped"),
            );
        }
    }

    /// Checks a control request's signature against the control mode; on refusal answers 401
    /// with the reason and returns false.
    pub(super) fn control_authorized(
        &mut self,
        now: Now,
        requester: &Requester,
        signed: Option<&Signed>,
    ) -> bool {
        let result = match (self.auth.control_mode, signed) {
            (AuthMode::Off, _) | (AuthMode::Optional, None) => Ok(()),
            (AuthMode::Required, None) => Err(self.auth.verifier.refuse_unsigned()),
            (_, Some(signed)) => self.verify_signed(now, signed),
        };
        match result {
            Ok(()) => true,
            Err(error) => {
                self.reply_error(requester, status::UNAUTHORIZED, error.to_string());
                false
            }
        }
    }

    fn verify_signed(&mut self, now: Now, signed: &Signed) -> Result<(), AuthError> {
        let claim = Claim {
            user: &signed.user,
            ts: signed.ts,
            nonce: &signed.nonce,
        };
        self.auth.verifier.verify(
            claim,
            &signed.signed_bytes,
            &signed.signature,
            now.unix_ms(),
        )
    }

    /// The `pubkey` reply: the node's public key as PEM, its fingerprint and size; why not
    /// when the node has none (it runs without a state folder).
    pub(super) fn node_public_key(&self) -> Result<Value, String> {
        let pem = match (&self.config.node_key, &self.config.own_key) {
            (Some(pem), _) => pem.clone(),
            (None, Some(key)) => key
                .public_pem()
                .map_err(|e| format!("the node's key pair cannot be read or made: {e}"))?,
            (None, None) => {
                return Err("this node has no key pair (it keeps no state folder: --store)".into())
            }
        };
        let key = PublicKey::from_pem(pem.as_bytes())
            .map_err(|e| format!("the node's public key is unreadable: {e}"))?;
        Ok(json!({"pem": key.pem(), "fingerprint": key.fingerprint(), "bits": key.bits()}))
    }

    /// The `keys` reply: the control mode, every user with a fingerprint, the counters.
    pub(super) fn keys_listing(&self) -> Value {
        let verifier = &self.auth.verifier;
        let users: Vec<Value> = verifier
            .keys()
            .iter()
            .map(|(user, key)| json!({"user": user, "fingerprint": key.fingerprint(), "bits": key.bits()}))
            .collect();
        let s = verifier.stats();
        let sessions = verifier.sessions();
        json!({
            "sessions": {
                "open": sessions.len(),
                "lifetime_ms": sessions.limits().lifetime.as_millis() as u64,
                "idle_ms": sessions.limits().idle.as_millis() as u64,
                "per_user": sessions.limits().per_user,
                "total": sessions.limits().total,
                "stats": sessions.stats(),
            },
            "control_auth": self.auth.control_mode.name(),
            "window_ms": verifier.guard().limits().window_ms,
            "nonces": verifier.guard().len(),
            "users": users,
            "stats": {
                "accepted": s.accepted, "unsigned": s.unsigned, "unknown_user": s.unknown_user,
                "bad_nonce": s.bad_nonce, "expired": s.expired, "future": s.future,
                "bad_signature": s.bad_signature, "replayed": s.replayed, "too_many": s.too_many,
                "incomplete": s.incomplete, "wrong_app": s.wrong_app, "bad_body": s.bad_body, "not_allowed": s.not_allowed,
            },
            "sealed": self.shared.seal.stats.json(),
        })
    }
}
