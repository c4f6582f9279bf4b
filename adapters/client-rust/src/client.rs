//! The client: one DEALER connection, many requests told apart by sid.

mod sealed;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use cocaine_core::codec::native::{
    encode_cancel, encode_choke, encode_chunk, encode_open, encode_ping, Policy,
};

use cocaine_core::auth::session::KeyUnwrapper;
use cocaine_core::auth::Signer;

use crate::error::ClientError;
use crate::reply::{Reply, ReplyKind, Sid};
use crate::seal::Sealing;
use crate::session::{self, Sessions};
use crate::signing::{Pending, Signing};
use crate::wire::{Incoming, Wire};

/// Timeout of [`Client::call`] and of sends until [`Client::set_timeout`] changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a node's native endpoint (or any peer speaking docs/protocol.md §2).
///
/// Two ways to use it, mixed freely on one connection:
/// - [`call`](Self::call): send a whole request, wait for the whole reply.
/// - [`open`](Self::open) / [`send`](Self::send) / [`end`](Self::end) and
///   [`recv`](Self::recv): stream, and keep many requests in flight; each [`Reply`] names its
///   sid.
///
/// Replies for streams that arrive while a `call` or `ping` waits are kept for `recv`; replies
/// for sids the client no longer tracks (a call that timed out) are dropped.
pub struct Client {
    wire: Wire,
    next_sid: u64,
    next_token: u64,
    /// Sids from `open` whose terminal reply `recv` has not yet handed out.
    streams: HashSet<u64>,
    /// Replies for `streams` that arrived while a call or ping waited.
    backlog: VecDeque<Reply>,
    timeout: Duration,
    /// Set by [`sign_as`](Self::sign_as): every request from then on is signed.
    signing: Option<Signing>,
    /// Signed streams whose chunks wait for their end.
    pending: HashMap<u64, Pending>,
    /// Set by [`session_as`](Self::session_as): requests go in a session.
    session: Option<Sessions>,
    /// Set by [`seal_to`](Self::seal_to): every request from then on is sealed.
    sealing: Option<Sealing>,
    /// Sealed requests whose reply is awaited, with the nonce it is bound to.
    sealed: HashMap<u64, String>,
}

impl Client {
    /// Connects to `endpoint` (e.g. `tcp://127.0.0.1:10053`) on a context of its own.
    /// ZeroMQ connects in the background, so this succeeds before the node is reachable.
    ///
    /// # Errors
    ///
    /// [`ClientError::Zmq`] if the endpoint is malformed.
    pub fn connect(endpoint: &str) -> Result<Client, ClientError> {
        Client::connect_with(&zmq::Context::new(), endpoint)
    }

    /// Connects on a shared context, so many clients share its I/O thread.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn connect_with(ctx: &zmq::Context, endpoint: &str) -> Result<Client, ClientError> {
        Ok(Client {
            wire: Wire::connect(ctx, endpoint, DEFAULT_TIMEOUT)?,
            next_sid: 1,
            next_token: 1,
            streams: HashSet::new(),
            backlog: VecDeque::new(),
            timeout: DEFAULT_TIMEOUT,
            signing: None,
            pending: HashMap::new(),
            session: None,
            sealing: None,
            sealed: HashMap::new(),
        })
    }

    /// Signs every later request as `signer`'s user, for `app` (the app the endpoint serves:
    /// the node refuses a request signed for another app). A signed stream's chunks are kept
    /// until [`end`](Self::end), then sent with its open: the signature covers the body's
    /// SHA-256.
    ///
    /// # Errors
    ///
    /// [`ClientError::Sign`] if the system has no random source for nonces.
    pub fn sign_as(
        &mut self,
        app: &str,
        signer: Box<dyn Signer + Send>,
    ) -> Result<(), ClientError> {
        self.signing = Some(Signing::new(app, signer)?);
        Ok(())
    }

    /// Like [`sign_as`](Self::sign_as), but with a session key (docs/security.md): the first
    /// request opens a session with one signature, later ones carry an HMAC under the key the
    /// node sealed to `user`'s public key, which `user` unwraps. The session is renewed before
    /// it ends, and a call the node refuses because it no longer knows the session (expired,
    /// idle, the key replaced, the node restarted) is retried once in a new one.
    ///
    /// # Errors
    ///
    /// [`ClientError::Sign`] if the system has no random source for nonces.
    pub fn session_as(
        &mut self,
        app: &str,
        user: std::sync::Arc<dyn KeyUnwrapper + Send + Sync>,
    ) -> Result<(), ClientError> {
        self.session = Some(Sessions::new(app, user)?);
        self.signing = None;
        // A sealed body is bound to a signature's nonce, which a request in a session lacks:
        // sealing is for per-request signing only (seal_to refuses a session too).
        self.sealing = None;
        Ok(())
    }

    /// Opens a session if requests go in one and there is none fresh.
    fn ensure_session(&mut self, deadline: Option<Instant>) -> Result<(), ClientError> {
        if !self.session.as_ref().is_some_and(Sessions::needs_open) {
            return Ok(());
        }
        let sid = self.alloc_sid();
        let sessions = self.session.as_mut().expect("checked above");
        let open = sessions.opening(sid)?;
        self.wire.send(&[&open, &encode_choke(sid)])?;
        let chunks = self.collect(sid, deadline).inspect_err(|_| {
            self.wire.send_now(&encode_cancel(sid));
        })?;
        self.session
            .as_mut()
            .expect("checked above")
            .granted(&chunks)
    }

    /// Sets the timeout of [`call`](Self::call) and how long any send may wait for room.
    ///
    /// # Errors
    ///
    /// [`ClientError::Zmq`] if the socket refuses the option.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
        self.wire.set_send_timeout(timeout)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Sets the largest reply frame accepted; longer ones are [`ClientError::Protocol`].
    pub fn set_max_message(&mut self, bytes: usize) {
        self.wire.max_message = bytes;
    }

    /// Calls `event` with `body` as the whole request; returns the reply chunks.
    ///
    /// # Errors
    ///
    /// As [`call_with`](Self::call_with), with the client's timeout.
    pub fn call(&mut self, event: &str, body: &[u8]) -> Result<Vec<Vec<u8>>, ClientError> {
        self.call_with(event, body, Policy::default(), self.timeout)
    }

    /// Calls `event` with a policy and a timeout. The request goes out as one multipart
    /// message `[3]`, `[4]`, `[5]`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Remote`] for an error reply, [`ClientError::Timeout`] if the reply is
    /// not complete in time, [`ClientError::Protocol`] for an undecodable frame. Then the call
    /// is cancelled on the node and anything more it sends for it is dropped.
    pub fn call_with(
        &mut self,
        event: &str,
        body: &[u8],
        policy: Policy,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let deadline = Instant::now().checked_add(timeout);
        if self.sealing.is_some() {
            let sid = self.alloc_sid();
            return self.call_sealed(sid, event, body, &policy, deadline);
        }
        let mut retried = false;
        loop {
            self.ensure_session(deadline)?;
            let sid = self.alloc_sid();
            let open = match (&mut self.session, &mut self.signing) {
                (Some(sessions), _) => sessions.open(sid, event, &policy, &[body])?,
                (None, Some(signing)) => signing.open(sid, event, &policy, &[body])?,
                (None, None) => encode_open(sid, event, &policy, None),
            };
            self.wire
                .send(&[&open, &encode_chunk(sid, body), &encode_choke(sid)])?;
            let result = self.collect(sid, deadline);
            match (&mut self.session, &result) {
                (Some(sessions), Err(e)) if !retried && session::is_stale(e) => {
                    sessions.forget();
                    retried = true;
                    continue;
                }
                (_, Err(_)) => self.wire.send_now(&encode_cancel(sid)),
                _ => {}
            }
            return result;
        }
    }

    /// Waits for the replies of call `sid`, keeping those of streams for later.
    fn collect(
        &mut self,
        sid: u64,
        deadline: Option<Instant>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut chunks = Vec::new();
        loop {
            let reply = match self.wire.next(deadline)? {
                None => return Err(ClientError::Timeout),
                Some(Incoming::Pong(_)) => continue,
                Some(Incoming::Reply(reply)) => reply,
            };
            match reply.kind {
                ReplyKind::Chunk(data) if reply.sid.0 == sid => chunks.push(data),
                ReplyKind::End if reply.sid.0 == sid => return Ok(chunks),
                // An error on sid 0 means the node could not decode something we sent: while
                // we wait for a call, that is most likely the call.
                ReplyKind::Error { code, message }
                    if reply.sid.0 == sid || reply.sid == Sid::CONNECTION =>
                {
                    return Err(ClientError::Remote { code, message })
                }
                kind => self.keep(Reply {
                    sid: reply.sid,
                    kind,
                }),
            }
        }
    }

    /// Opens a streamed request; send its chunks with [`send`](Self::send), finish it with
    /// [`end`](Self::end) and read the replies with [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// [`ClientError::Timeout`] if the socket has no room within the client's timeout,
    /// [`ClientError::Zmq`] otherwise.
    pub fn open(&mut self, event: &str, policy: Policy) -> Result<Sid, ClientError> {
        let sid = self.alloc_sid();
        if self.signing.is_some() || self.session.is_some() {
            let pending = Pending {
                event: event.to_owned(),
                policy,
                chunks: Vec::new(),
            };
            self.pending.insert(sid, pending);
        } else {
            self.wire.send(&[&encode_open(sid, event, &policy, None)])?;
        }
        self.streams.insert(sid);
        Ok(Sid(sid))
    }

    /// Sends one request chunk of `sid`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn send(&mut self, sid: Sid, chunk: &[u8]) -> Result<(), ClientError> {
        if let Some(pending) = self.pending.get_mut(&sid.0) {
            pending.chunks.push(chunk.to_vec());
            return Ok(());
        }
        self.wire.send(&[&encode_chunk(sid.0, chunk)])
    }

    /// Ends the request of `sid`; its replies may still be coming.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn end(&mut self, sid: Sid) -> Result<(), ClientError> {
        let Some(pending) = self.pending.remove(&sid.0) else {
            return self.wire.send(&[&encode_choke(sid.0)]);
        };
        self.ensure_session(Instant::now().checked_add(self.timeout))?;
        let chunks: Vec<&[u8]> = pending.chunks.iter().map(Vec::as_slice).collect();
        if self.sealing.is_some() {
            let frames = self.sealed_frames(sid.0, &pending.event, &pending.policy, &chunks)?;
            let frames: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
            return self.wire.send(&frames);
        }
        let open = match (&mut self.session, &mut self.signing) {
            (Some(sessions), _) => {
                sessions.open(sid.0, &pending.event, &pending.policy, &chunks)?
            }
            (None, Some(signing)) => {
                signing.open(sid.0, &pending.event, &pending.policy, &chunks)?
            }
            (None, None) => encode_open(sid.0, &pending.event, &pending.policy, None),
        };
        let mut frames = vec![open];
        frames.extend(chunks.iter().map(|c| encode_chunk(sid.0, c)));
        frames.push(encode_choke(sid.0));
        let frames: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        self.wire.send(&frames)
    }

    /// Cancels `sid`. One terminal reply still follows through [`recv`](Self::recv):
    /// `Error { code: 499, .. }`, or the end or error that won the race.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn cancel(&mut self, sid: Sid) -> Result<(), ClientError> {
        if self.pending.remove(&sid.0).is_some() {
            // Never sent: answer it here as the node would.
            self.streams.remove(&sid.0);
            self.backlog.push_back(Reply {
                sid,
                kind: ReplyKind::Error {
                    code: 499,
                    message: "cancelled".into(),
                },
            });
            return Ok(());
        }
        self.wire.send(&[&encode_cancel(sid.0)])
    }

    /// The next reply of any open stream (or a connection-level error, sid 0), waiting up to
    /// `timeout`; `Ok(None)` if none came.
    ///
    /// # Errors
    ///
    /// [`ClientError::Protocol`] for an undecodable frame (dropped; call again for the next),
    /// [`ClientError::Zmq`] if the socket fails.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Reply>, ClientError> {
        if let Some(reply) = self.backlog.pop_front() {
            return self.deliver(reply).map(Some);
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            match self.wire.next(deadline)? {
                None => return Ok(None),
                Some(Incoming::Pong(_)) => {}
                Some(Incoming::Reply(reply)) => {
                    if reply.sid == Sid::CONNECTION || self.track(&reply) {
                        return self.deliver(reply).map(Some);
                    }
                }
            }
        }
    }

    /// Sends a ping and waits for its pong; returns the round-trip time.
    ///
    /// # Errors
    ///
    /// [`ClientError::Timeout`] if no pong came in time; as [`recv`](Self::recv) otherwise.
    pub fn ping(&mut self, timeout: Duration) -> Result<Duration, ClientError> {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        self.wire.send(&[&encode_ping(token)])?;
        loop {
            match self.wire.next(deadline)? {
                None => return Err(ClientError::Timeout),
                Some(Incoming::Pong(t)) if t == token => return Ok(start.elapsed()),
                Some(Incoming::Pong(_)) => {}
                Some(Incoming::Reply(reply)) => self.keep(reply),
            }
        }
    }

    /// Keeps a reply for `recv` if it belongs to an open stream (or the connection).
    fn keep(&mut self, reply: Reply) {
        if reply.sid == Sid::CONNECTION || self.track(&reply) {
            self.backlog.push_back(reply);
        }
    }

    /// Whether `reply` belongs to an open stream; a terminal reply closes it.
    fn track(&mut self, reply: &Reply) -> bool {
        if reply.is_terminal() {
            self.streams.remove(&reply.sid.0)
        } else {
            self.streams.contains(&reply.sid.0)
        }
    }

    /// A fresh sid; 0 is the connection's, and sids still open are skipped after a wrap.
    fn alloc_sid(&mut self) -> u64 {
        loop {
            let sid = self.next_sid;
            self.next_sid = self.next_sid.wrapping_add(1);
            if sid != 0 && !self.streams.contains(&sid) {
                return sid;
            }
        }
    }
}
