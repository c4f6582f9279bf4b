//! Requests in a session (docs/security.md, "Session keys"): one signed session-open (event
//! `cocaine.session`) gets a key the node sealed to the user's public key; later opens carry
//! an HMAC-SHA-256 under it and a sequence number instead of an RSA signature. The session is
//! opened when the first request needs it and again before it ends, or when the node says it
//! no longer knows it (expired, idle, dropped, the node restarted): such a refusal reached no
//! worker, so a call is retried once in a new session.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cocaine_core::auth::session::{ClientSession, KeyUnwrapper, SESSION_EVENT};
use cocaine_core::auth::{body_digest, SignError, Signer};
use cocaine_core::codec::native::Policy;
use cocaine_core::codec::native_session::decode_grant;

use crate::error::ClientError;
use crate::signing::Signing;

/// Renew this long before the node's end of a session at most (and at most a quarter of
/// its lifetime), so clocks a little apart do not make a request arrive after it.
const MARGIN_MS: u64 = 30_000;

/// The user's key shared by the session-open's signer and the unwrap.
struct Shared(Arc<dyn KeyUnwrapper + Send + Sync>);

impl Signer for Shared {
    fn user(&self) -> &str {
        self.0.user()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.0.sign(message)
    }
}

/// A user's sessions with one app: the signer of session-opens, the key that unwraps, and the
/// session in use.
pub(crate) struct Sessions {
    app: String,
    user: Arc<dyn KeyUnwrapper + Send + Sync>,
    signing: Signing,
    current: Option<(ClientSession, u64)>,
}

impl Sessions {
    pub fn new(
        app: &str,
        user: Arc<dyn KeyUnwrapper + Send + Sync>,
    ) -> Result<Sessions, ClientError> {
        Ok(Sessions {
            app: app.to_owned(),
            signing: Signing::new(app, Box::new(Shared(user.clone())))?,
            user,
            current: None,
        })
    }

    /// True when a session must be opened before the next request.
    pub fn needs_open(&self) -> bool {
        self.current
            .as_ref()
            .is_none_or(|(s, margin)| !s.fresh(now_ms(), *margin))
    }

    /// The signed session-open of request `sid` (send it with an end).
    pub fn opening(&mut self, sid: u64) -> Result<Bytes, ClientError> {
        self.signing
            .open(sid, SESSION_EVENT, &Policy::default(), &[])
    }

    /// Takes the node's answer to a session-open: the grant, its key unwrapped.
    pub fn granted(&mut self, chunks: &[Vec<u8>]) -> Result<(), ClientError> {
        let body: Vec<u8> = chunks.concat();
        let grant = decode_grant(&body)?;
        let session = ClientSession::from_grant(&grant, self.user.as_ref())
            .map_err(|e| ClientError::Sign(e.0))?;
        let lifetime = grant.expires_ms.saturating_sub(now_ms());
        self.current = Some((session, MARGIN_MS.min(lifetime / 4)));
        Ok(())
    }

    /// The open of request `sid` in the current session (opened before with
    /// [`Sessions::needs_open`] and [`Sessions::granted`]).
    pub fn open(
        &mut self,
        sid: u64,
        event: &str,
        policy: &Policy,
        chunks: &[&[u8]],
    ) -> Result<Bytes, ClientError> {
        let Some((session, _)) = self.current.as_mut() else {
            return Err(ClientError::Sign("no session is open".into()));
        };
        let body = body_digest(chunks.iter().copied());
        Ok(session.open(sid, &self.app, event, policy, body))
    }

    /// Forgets the session: the next request opens a new one.
    pub fn forget(&mut self) {
        self.current = None;
    }
}

/// True for the node's refusal of a session it no longer has: a new session may succeed.
pub(crate) fn is_stale(error: &ClientError) -> bool {
    matches!(error, ClientError::Remote { code: 401, message }
        if message == "unknown session" || message == "session expired")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
