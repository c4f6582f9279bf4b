//! Sealed calls and streams on a [`Client`] (docs/security.md, "Sealed bodies"): the whole
//! body sealed for the node, the open signed with `policy.sealed`, and the reply (one sealed
//! chunk) opened with the user's key before it is handed out.

use std::time::Instant;

use bytes::Bytes;
use cocaine_core::auth::Unsealer;
use cocaine_core::codec::native::{encode_cancel, encode_choke, encode_chunk, Policy};

use super::Client;
use crate::error::ClientError;
use crate::reply::{Reply, ReplyKind};
use crate::seal::Sealing;

impl Client {
    /// Seals every later request's body for the node whose public key is `node_key_pem`
    /// (control `pubkey`, or its `node.pem`), and opens the sealed replies with `opener`, the
    /// signing user's private key. Call [`sign_as`](Self::sign_as) first: the node seals a
    /// reply for the user who signed its request. A client in a session does not seal (the
    /// node refuses a sealed request in a session with 400).
    ///
    /// # Errors
    ///
    /// [`ClientError::Seal`] without signing, in a session, for a key that is not an RSA public key in PEM,
    /// or without a random source.
    pub fn seal_to(
        &mut self,
        node_key_pem: &[u8],
        opener: Box<dyn Unsealer>,
    ) -> Result<(), ClientError> {
        if self.session.is_some() {
            return Err(ClientError::Seal(
                "sealed requests are signed per request, not made in a session: use sign_as, \
                 not session_as"
                    .into(),
            ));
        }
        if self.signing.is_none() {
            return Err(ClientError::Seal(
                "sealing needs a signing user: call sign_as first".into(),
            ));
        }
        self.sealing = Some(Sealing::new(node_key_pem, opener)?);
        Ok(())
    }

    /// The frames of a whole sealed request (open, one chunk, end); remembers the nonce its
    /// reply is bound to.
    pub(super) fn sealed_frames(
        &mut self,
        sid: u64,
        event: &str,
        policy: &Policy,
        chunks: &[&[u8]],
    ) -> Result<Vec<Bytes>, ClientError> {
        let (Some(signing), Some(sealing)) = (&mut self.signing, &mut self.sealing) else {
            return Err(ClientError::Seal("this client does not seal".into()));
        };
        let stamp = signing.stamp();
        let body = chunks.concat();
        let sealed = sealing.seal_body(signing.user(), signing.app(), &stamp.nonce, &body)?;
        let policy = Policy {
            sealed: true,
            ..policy.clone()
        };
        let open = signing.open_stamped(sid, event, &policy, &[&sealed], &stamp)?;
        self.sealed.insert(sid, stamp.nonce);
        Ok(vec![open, encode_chunk(sid, &sealed), encode_choke(sid)])
    }

    /// A sealed one-shot call: the reply's one chunk opened.
    pub(super) fn call_sealed(
        &mut self,
        sid: u64,
        event: &str,
        body: &[u8],
        policy: &Policy,
        deadline: Option<Instant>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let frames = self.sealed_frames(sid, event, policy, &[body])?;
        let frames: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        self.wire.send(&frames)?;
        let result = self.collect(sid, deadline);
        if result.is_err() {
            self.wire.send_now(&encode_cancel(sid));
        }
        let chunks = result.inspect_err(|_| {
            self.sealed.remove(&sid);
        })?;
        let opened = match chunks.as_slice() {
            [one] => self.open_reply(sid, one),
            _ => Err(ClientError::Seal(format!(
                "a sealed reply of {} chunks; the node sends one",
                chunks.len()
            ))),
        };
        self.sealed.remove(&sid);
        opened.map(|plain| vec![plain])
    }

    /// A reply as the caller sees it: a sealed request's chunk opened; a terminal reply ends
    /// what is kept for the request.
    pub(super) fn deliver(&mut self, mut reply: Reply) -> Result<Reply, ClientError> {
        let sid = reply.sid.0;
        if reply.is_terminal() {
            self.sealed.remove(&sid);
        } else if let ReplyKind::Chunk(data) = &mut reply.kind {
            if self.sealed.contains_key(&sid) {
                *data = self.open_reply(sid, data)?;
            }
        }
        Ok(reply)
    }

    fn open_reply(&mut self, sid: u64, sealed: &[u8]) -> Result<Vec<u8>, ClientError> {
        let (Some(signing), Some(sealing), Some(nonce)) =
            (&self.signing, &mut self.sealing, self.sealed.get(&sid))
        else {
            return Err(ClientError::Seal(format!("no sealed request {sid}")));
        };
        sealing.open_reply(signing.user(), signing.app(), nonce, sealed)
    }
}
