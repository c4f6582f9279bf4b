//! Signed requests (docs/security.md): the open of each request is signed over the app, the
//! event, the policy, the SHA-256 of the whole body, a timestamp and a nonce. The body must be
//! known before the open is signed, so a signed stream's chunks are kept here until
//! [`Client::end`](crate::Client::end) and then go out with the open in one message (the node
//! holds a signed request until its end anyway).
//!
//! The private-key operation is a [`Signer`] handed in (`cocaine-keys` has one over OpenSSL);
//! this crate only stamps and frames.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cocaine_core::auth::{body_digest, sign_open, Invoke, Signer, Stamp};
use cocaine_core::codec::native::Policy;

use crate::error::ClientError;

/// Who signs, for which app, and the nonces' source.
pub(crate) struct Signing {
    app: String,
    signer: Box<dyn Signer + Send>,
    /// 32 hex digits read once from the system's random source; each nonce adds a counter,
    /// so nonces never repeat within this client and differ from every other client's.
    nonce_prefix: String,
    counter: u64,
}

/// A signed request whose chunks wait for its end.
pub(crate) struct Pending {
    pub event: String,
    pub policy: Policy,
    pub chunks: Vec<Vec<u8>>,
}

impl Signing {
    pub fn new(app: &str, signer: Box<dyn Signer + Send>) -> Result<Signing, ClientError> {
        Ok(Signing {
            app: app.to_owned(),
            signer,
            nonce_prefix: random_hex()?,
            counter: 0,
        })
    }

    /// The user who signs.
    pub fn user(&self) -> &str {
        self.signer.user()
    }

    /// The app requests are signed for.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// A fresh timestamp and nonce.
    pub fn stamp(&mut self) -> Stamp {
        self.counter += 1;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Stamp {
            ts,
            nonce: format!("{}{:016x}", self.nonce_prefix, self.counter),
        }
    }

    /// The signed open of request `sid` whose body is `chunks`.
    pub fn open(
        &mut self,
        sid: u64,
        event: &str,
        policy: &Policy,
        chunks: &[&[u8]],
    ) -> Result<Bytes, ClientError> {
        let stamp = self.stamp();
        self.open_stamped(sid, event, policy, chunks, &stamp)
    }

    /// [`open`](Self::open) with a stamp chosen before (a sealed body is bound to its nonce).
    pub fn open_stamped(
        &mut self,
        sid: u64,
        event: &str,
        policy: &Policy,
        chunks: &[&[u8]],
        stamp: &Stamp,
    ) -> Result<Bytes, ClientError> {
        let invoke = Invoke {
            sid,
            app: &self.app,
            event,
            policy,
            body: body_digest(chunks.iter().copied()),
        };
        sign_open(&invoke, stamp, self.signer.as_ref()).map_err(|e| ClientError::Sign(e.0))
    }
}

fn random_hex() -> Result<String, ClientError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ClientError::Sign(format!("no random source for nonces: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
