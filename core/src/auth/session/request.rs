//! Sessions for clients: the session-open a client signs, the session it gets from the node's
//! grant (the key unwrapped by a [`KeyUnwrapper`], a private-key operation the adapters do over
//! a constant-time library), and the MAC'd opens of its requests. The core computes which
//! bytes are MAC'd, next to the code that checks them.

use bytes::Bytes;

use super::{mac, SESSION_EVENT};
use crate::auth::sign::{body_digest, sign_open, Invoke, SignError, Signer, Stamp};
use crate::codec::native::Policy;
use crate::codec::native_session::{
    encode_session_open, encode_session_open_maced_part, SessionAuth, SessionGrant, SESSION_KEY_LEN,
};

/// A user's private key that can also open what was sealed to its public key: RSA-OAEP with
/// SHA-256 (MGF1-SHA-256, no label).
pub trait KeyUnwrapper: Signer {
    /// The plaintext of `wrapped`.
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// The signed session-open of request `sid`: event [`SESSION_EVENT`], no body, for `app`.
/// Send it with an end (`[5, sid]`); the reply is one chunk, the grant
/// ([`crate::codec::native_session::decode_grant`]), and an end.
pub fn open_session_request(
    sid: u64,
    app: &str,
    stamp: &Stamp,
    signer: &dyn Signer,
) -> Result<Bytes, SignError> {
    let policy = Policy::default();
    let invoke = Invoke {
        sid,
        app,
        event: SESSION_EVENT,
        policy: &policy,
        body: body_digest([]),
    };
    sign_open(&invoke, stamp, signer)
}

/// A session as a client holds it: its id, its key, when it ends (the node's clock, unix
/// milliseconds) and the next sequence number.
#[derive(Clone)]
pub struct ClientSession {
    id: Bytes,
    key: [u8; SESSION_KEY_LEN],
    expires_ms: u64,
    next_seq: u64,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientSession(expires {} ms, next seq {})",
            self.expires_ms, self.next_seq
        )
    }
}

impl ClientSession {
    /// The session a grant gives, its key unwrapped by `unwrapper`.
    ///
    /// # Errors
    ///
    /// The unwrap failed (not sealed to this key), or the key is not 32 bytes.
    pub fn from_grant(
        grant: &SessionGrant,
        unwrapper: &dyn KeyUnwrapper,
    ) -> Result<ClientSession, SignError> {
        let key = unwrapper.unwrap_key(&grant.wrapped_key)?;
        let key: [u8; SESSION_KEY_LEN] = key.try_into().map_err(|k: Vec<u8>| {
            SignError(format!("a session key of {} bytes, not 32", k.len()))
        })?;
        Ok(ClientSession::new(
            grant.session.clone(),
            key,
            grant.expires_ms,
        ))
    }

    /// A session from its parts (what [`ClientSession::from_grant`] makes).
    pub fn new(id: Bytes, key: [u8; SESSION_KEY_LEN], expires_ms: u64) -> ClientSession {
        ClientSession {
            id,
            key,
            expires_ms,
            next_seq: 1,
        }
    }

    /// When the node ends the session at the latest (its clock, unix milliseconds).
    pub fn expires_ms(&self) -> u64 {
        self.expires_ms
    }

    /// The session id.
    pub fn id(&self) -> &Bytes {
        &self.id
    }

    /// True while the session has more than `margin_ms` left at `now_ms` (the client's
    /// clock): renew it otherwise.
    pub fn fresh(&self, now_ms: u64, margin_ms: u64) -> bool {
        now_ms.saturating_add(margin_ms) < self.expires_ms
    }

    /// The open of request `sid` in this session, for `app`, whose whole body has SHA-256
    /// `body`; takes the next sequence number.
    pub fn open(
        &mut self,
        sid: u64,
        app: &str,
        event: &str,
        policy: &Policy,
        body: [u8; 32],
    ) -> Bytes {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut auth = SessionAuth {
            session: self.id.clone(),
            seq,
            app: app.to_owned(),
            body: Bytes::copy_from_slice(&body),
            mac: Bytes::new(),
        };
        let maced = encode_session_open_maced_part(sid, event, policy, &auth);
        auth.mac = Bytes::copy_from_slice(&mac(&self.key, &maced));
        encode_session_open(sid, event, policy, &auth)
    }
}
