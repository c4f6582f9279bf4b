//! native-server: the native protocol on a ROUTER (PROTOCOL.md §2). Requests stream in,
//! replies stream out, each by its client-chosen sid.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use super::driver::{Binding, Cx, Driver, DriverInput, Handover, Job, JobRef};
use super::io::{Output, SocketKind};
use super::native_auth;
use super::native_seal::{self, ReplySeal, RequestSeal, Step};
use super::native_session::{self, Credential};
use super::spill::{Caller, Follow};
use crate::codec::native::{self, NativeMessage, Policy};
use crate::engine::{JobPolicy, Origin, ReplyEvent, ReplyMode};
use crate::ids::{EndpointId, IdMap};
use crate::manifest::keys::{endpoint, max_message, task_security, Ctx, Obj, Problems, Role};
use crate::manifest::{SecurityConfig, Task, TaskKind};
use crate::process::LogLevel;
use crate::status;

/// The most native-protocol messages one ZeroMQ message carries to a client.
const MAX_MESSAGES_PER_SEND: usize = 64;

/// A client's request, by (endpoint, client identity, sid).
type SessionKey = (EndpointId, Bytes, u64);

/// Where a reply goes: the client's ROUTER identity, whether it framed its messages with an
/// empty delimiter (echoed back), and its request's sid.
#[derive(Debug, Clone)]
struct Client {
    endpoint: EndpointId,
    peer: Bytes,
    delimiter: bool,
    sid: u64,
}

/// A signed request whose body is still coming: the node holds it, chunks and all, until its
/// end shows the body matches the digest the open signed; only then does the job exist.
#[derive(Debug)]
struct Held {
    job: Job,
    client: Client,
    digest: Bytes,
    chunks: Vec<Bytes>,
    size: usize,
    /// A sealed request: its body is opened at its end.
    seal: Option<RequestSeal>,
}

/// Open requests and how many each client has. They move with a redeploy: a request queued
/// in the old version runs on the new one, and one running on the old workers still gets its
/// later chunks and its reply.
#[derive(Debug, Default)]
struct Sessions {
    open: HashMap<SessionKey, (JobRef, u64)>,
    per_peer: HashMap<(EndpointId, Bytes), usize>,
    by_token: IdMap<u64, Client>,
    held: HashMap<SessionKey, Held>,
    /// Sealed requests' replies being gathered, by token.
    sealed: IdMap<u64, ReplySeal>,
}

impl Sessions {
    fn job(&self, endpoint: EndpointId, peer: &Bytes, sid: u64) -> Option<JobRef> {
        self.open
            .get(&(endpoint, peer.clone(), sid))
            .map(|(job, _)| *job)
    }

    fn open_count(&self, endpoint: EndpointId, peer: &Bytes) -> usize {
        let held = (self.held.keys())
            .filter(|(e, p, _)| *e == endpoint && p == peer)
            .count();
        let open = self.per_peer.get(&(endpoint, peer.clone())).copied();
        open.unwrap_or(0) + held
    }

    fn is_open(&self, endpoint: EndpointId, peer: &Bytes, sid: u64) -> bool {
        let key = (endpoint, peer.clone(), sid);
        self.open.contains_key(&key) || self.held.contains_key(&key)
    }

    fn insert(&mut self, client: Client, job: JobRef, token: u64) {
        let Client {
            endpoint,
            ref peer,
            sid,
            ..
        } = client;
        *self.per_peer.entry((endpoint, peer.clone())).or_insert(0) += 1;
        self.open
            .insert((endpoint, peer.clone(), sid), (job, token));
        self.by_token.insert(token, client);
    }

    /// Forgets a request once its terminal reply is on its way.
    fn close(&mut self, client: &Client) {
        let key = (client.endpoint, client.peer.clone(), client.sid);
        if let Some((_, token)) = self.open.remove(&key) {
            self.by_token.remove(&token);
            self.sealed.remove(&token);
            let key = (client.endpoint, client.peer.clone());
            if let Some(count) = self.per_peer.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.per_peer.remove(&key);
                }
            }
        }
    }

    fn absorb(&mut self, other: Sessions) {
        self.held.extend(other.held);
        self.sealed.extend(other.sealed);
        self.open.extend(other.open);
        self.by_token.extend(other.by_token);
        for (key, count) in other.per_peer {
            *self.per_peer.entry(key).or_insert(0) += count;
        }
    }
}

#[derive(Debug)]
pub(super) struct NativeServer {
    endpoint: String,
    max_message: usize,
    security: Option<SecurityConfig>,
    sessions: Sessions,
}

/// native-server: `endpoint` (bound), `max-message`, `security` (the app's by default).
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::NativeServer {
        endpoint: endpoint(o, Role::Bind, p),
        max_message: max_message(o, ctx, p),
        security: task_security(o, ctx.base_dir, ctx.security, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::NativeServer {
        endpoint,
        max_message,
        security,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(NativeServer {
        endpoint: endpoint.clone(),
        max_message: *max_message,
        security: security.clone(),
        sessions: Sessions::default(),
    }))
}

impl Driver for NativeServer {
    fn binding(&self) -> Option<Binding> {
        Some(Binding::new(SocketKind::Router, &self.endpoint).with_max_message(self.max_message))
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        match input {
            DriverInput::Received { endpoint, frames } => self.received(cx, endpoint, frames),
            DriverInput::Unbound { endpoint } => {
                cx.spill_unbound(endpoint);
                let gone: Vec<Client> = (self.sessions.by_token.values())
                    .filter(|c| c.endpoint == endpoint)
                    .cloned()
                    .collect();
                for client in gone {
                    self.sessions.close(&client);
                }
                self.sessions.held.retain(|(e, _, _), _| *e != endpoint);
            }
            _ => {}
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, token: u64, event: ReplyEvent) {
        if matches!(event, ReplyEvent::Head(_)) {
            return; // an HTTP reply head: the native protocol has no place for it
        }
        let Some(client) = self.sessions.by_token.get(&token).cloned() else {
            return;
        };
        // A sealed request's reply is gathered and goes out sealed, as one chunk, at its end.
        let event = match self.sessions.sealed.get_mut(&token) {
            None => event,
            Some(reply_seal) => match reply_seal.step(cx, event) {
                Step::Hold => return,
                Step::Send {
                    chunk,
                    event,
                    cancel,
                } => {
                    let job = self.sessions.job(client.endpoint, &client.peer, client.sid);
                    if let Some(job) = job.filter(|_| cancel) {
                        cx.cancel(job);
                    }
                    if let Some(chunk) = chunk {
                        send_reply(cx, &client, native::encode_chunk(client.sid, &chunk));
                    }
                    event
                }
            },
        };
        if event.is_terminal() {
            self.sessions.close(&client);
        }
        let message = reply_message(client.sid, &event);
        send_reply(cx, &client, message);
    }

    fn hand_over(&mut self, _cx: &mut Cx<'_>) -> Option<Handover> {
        Some(Box::new(std::mem::take(&mut self.sessions)))
    }

    fn take_over(&mut self, _cx: &mut Cx<'_>, from: Handover) {
        if let Ok(sessions) = from.downcast::<Sessions>() {
            self.sessions.absorb(*sessions);
        }
    }

    fn job_moved(&mut self, token: u64, to: JobRef) {
        if let Some(client) = self.sessions.by_token.get(&token) {
            let key = (client.endpoint, client.peer.clone(), client.sid);
            if let Some(entry) = self.sessions.open.get_mut(&key) {
                entry.0 = to;
            }
        }
    }
}

impl NativeServer {
    /// A message on the endpoint: `[identity, ("",) message...]`.
    fn received(&mut self, cx: &mut Cx<'_>, endpoint: EndpointId, frames: Vec<Bytes>) {
        let mut incoming = frames.into_iter();
        let Some(peer) = incoming.next() else { return };
        let mut rest: Vec<Bytes> = incoming.collect();
        let delimiter = rest.first().is_some_and(|f| f.is_empty());
        if delimiter {
            rest.remove(0);
        }
        let client = Client {
            endpoint,
            peer,
            delimiter,
            sid: 0,
        };
        let mut replies = Vec::new();
        let mut bad = Vec::new();
        for frame in rest {
            match NativeMessage::decode_signed(&frame, self.max_message) {
                Ok((message, signed)) => {
                    self.message(cx, &client, (message, signed), &mut replies)
                }
                Err(e) => {
                    replies.push(native::encode_error(0, status::BAD_REQUEST, &e.to_string()));
                    bad.push(e.to_string());
                }
            }
        }
        for reply in replies {
            let frames = reply_frames(client.peer.clone(), delimiter, reply);
            cx.out().push_back(Output::Send { endpoint, frames });
        }
        if let Some(first) = bad.first() {
            let message = format!(
                "{}: {} bad native frame(s) from a client: {first}",
                cx.app_name(),
                bad.len()
            );
            cx.log(LogLevel::Debug, message);
        }
    }

    /// One decoded message; what it answers at once goes to `replies`.
    fn message(
        &mut self,
        cx: &mut Cx<'_>,
        client: &Client,
        (message, signed): (NativeMessage, Option<Bytes>),
        replies: &mut Vec<Bytes>,
    ) {
        let (endpoint, peer) = (client.endpoint, &client.peer);
        match message {
            NativeMessage::Open {
                sid,
                event,
                policy,
                auth,
            } => {
                let signed = Credential::Signed(auth.as_ref().zip(signed.as_deref()));
                self.open_or_refuse(cx, client, sid, signed, (&event, &policy), replies);
            }
            NativeMessage::OpenInSession {
                sid,
                event,
                policy,
                auth,
            } => {
                let maced = signed.as_deref().unwrap_or_default();
                let credential = Credential::Session(&auth, maced);
                self.open_or_refuse(cx, client, sid, credential, (&event, &policy), replies);
            }
            NativeMessage::Chunk { sid, data } => {
                let key = (endpoint, peer.clone(), sid);
                if let Some(job) = self.sessions.job(endpoint, peer, sid) {
                    cx.push_chunk(job, data);
                } else if cx.spill_is_open(&key) {
                    cx.spill_follow(&key, Follow::Chunk(data));
                } else if let Some(error) = self.hold_chunk(cx, client, sid, data) {
                    replies.push(error);
                }
            }
            NativeMessage::Choke { sid } => {
                if let Some(job) = self.sessions.job(endpoint, peer, sid) {
                    cx.end_request(job);
                } else if cx.spill_is_open(&(endpoint, peer.clone(), sid)) {
                    cx.spill_follow(&(endpoint, peer.clone(), sid), Follow::Choke);
                } else if let Some(error) = self.release(cx, client, sid) {
                    replies.push(error);
                }
            }
            NativeMessage::Cancel { sid } => {
                if let Some(job) = self.sessions.job(endpoint, peer, sid) {
                    cx.cancel(job);
                } else if cx.spill_is_open(&(endpoint, peer.clone(), sid)) {
                    cx.spill_follow(&(endpoint, peer.clone(), sid), Follow::Cancel);
                } else if self.sessions.held.remove(&(endpoint, peer.clone(), sid)).is_some() {
                    replies.push(native::encode_error(sid, status::CANCELLED, "cancelled"));
                }
            }
            NativeMessage::Ping { token } => replies.push(native::encode_pong(token)),
            NativeMessage::Error { sid, .. } | NativeMessage::Pong { token: sid } => {
                let message = format!("unexpected message from a client (sid or token {sid})");
                replies.push(native::encode_error(0, status::BAD_REQUEST, &message));
            }
        }
    }

    /// Opens request `sid` of `client`'s connection, or answers why not (into `replies`).
    fn open_or_refuse(
        &mut self,
        cx: &mut Cx<'_>,
        client: &Client,
        sid: u64,
        credential: Credential<'_>,
        (event, policy): (&String, &Policy),
        replies: &mut Vec<Bytes>,
    ) {
        let client = Client {
            sid,
            ..client.clone()
        };
        if let Err((sid, code, message)) = self.open(cx, client, credential, (event, policy)) {
            replies.push(native::encode_error(sid, code, &message));
        }
    }

    /// Opens a request: a job, a signed request held until its body has come, a request
    /// handed to a peer (spillover: unsigned only, `spill` is its event and policy), or why
    /// not (the sid to answer on, a code and a message). `credential` is the open's `auth`
    /// and the bytes its signature (or session MAC) covers.
    fn open(
        &mut self,
        cx: &mut Cx<'_>,
        client: Client,
        credential: Credential<'_>,
        (event, policy): (&str, &Policy),
    ) -> Result<(), (u64, u32, String)> {
        let mut job = Job {
            event: (!event.is_empty()).then(|| event.into()),
            policy: policy_of(policy),
            mode: ReplyMode::Stream,
            origin: None,
            body: None,
        };
        let sid = client.sid;
        if sid == 0 {
            return Err((0, status::BAD_REQUEST, "sid 0 is reserved".to_owned()));
        }
        let key = (client.endpoint, client.peer.clone(), sid);
        if self.sessions.is_open(client.endpoint, &client.peer, sid) || cx.spill_is_open(&key) {
            return Err((
                sid,
                status::BAD_REQUEST,
                format!("sid {sid} is already open"),
            ));
        }
        let max_open = cx.config().max_open_per_peer;
        if self.sessions.open_count(client.endpoint, &client.peer) >= max_open {
            let message = format!("too many open requests on this connection (limit {max_open})");
            return Err((sid, status::UNAVAILABLE, message));
        }
        let session_open = native_session::is_session_open(&job);
        if policy.sealed {
            native_session::refuse_sealed(cx, &credential, session_open)
                .map_err(|(code, message)| (sid, code, message))?;
        }
        let auth = credential.signed_auth();
        let verified = (credential.check(cx, self.security.as_ref(), session_open))
            .map_err(|(code, message)| (sid, code, message))?;
        let seal = match policy.sealed {
            true => Some(
                native_seal::check_open(cx, verified.as_ref(), auth)
                    .map_err(|(code, message)| (sid, code, message))?,
            ),
            false => None,
        };
        let Some(verified) = verified else {
            let caller = Caller {
                endpoint: client.endpoint,
                identity: client.peer.clone(),
                delimiter: client.delimiter,
                sid,
            };
            if cx.spill_offer(caller, event, policy) {
                return Ok(());
            }
            return self.start(cx, client, job, None);
        };
        job.origin = Some(Box::new(Origin {
            user: Some(verified.user),
            peer: None,
            http: None,
        }));
        let key = (client.endpoint, client.peer.clone(), sid);
        let held = Held {
            job,
            client,
            digest: verified.body,
            chunks: Vec::new(),
            size: 0,
            seal,
        };
        self.sessions.held.insert(key, held);
        Ok(())
    }

    /// A chunk of a held request; an error to answer if it makes the body too large (the
    /// request is then dropped).
    fn hold_chunk(
        &mut self,
        cx: &mut Cx<'_>,
        client: &Client,
        sid: u64,
        data: Bytes,
    ) -> Option<Bytes> {
        let key = (client.endpoint, client.peer.clone(), sid);
        let held = self.sessions.held.get_mut(&key)?;
        let limit = cx.max_message();
        held.size += data.len();
        if held.size > limit {
            self.sessions.held.remove(&key);
            let message = format!("a signed request's body over {limit} bytes");
            return Some(native::encode_error(sid, status::TOO_LARGE, &message));
        }
        held.chunks.push(data);
        None
    }

    /// The end of a held request: its body is checked against the signed digest and, if it
    /// matches, the job starts with the whole body. An error to answer otherwise.
    fn release(&mut self, cx: &mut Cx<'_>, client: &Client, sid: u64) -> Option<Bytes> {
        let key = (client.endpoint, client.peer.clone(), sid);
        let Held {
            mut job,
            client,
            digest,
            mut chunks,
            seal,
            ..
        } = self.sessions.held.remove(&key)?;
        if let Err(e) = native_auth::check_body(cx, &digest, &chunks) {
            return Some(native::encode_error(sid, e.code(), &e.to_string()));
        }
        if native_session::is_session_open(&job) {
            let user = job.origin.and_then(|o| o.user).unwrap_or_default();
            for message in native_session::answer(cx, sid, &user, &chunks) {
                send_reply(cx, &client, message);
            }
            return None;
        }
        if let Some(seal) = &seal {
            match native_seal::open_body(cx, seal, &chunks) {
                Ok(plain) => chunks = vec![plain],
                Err((code, message)) => return Some(native::encode_error(sid, code, &message)),
            }
        }
        job.body = Some(chunks);
        let (sid, code, message) = self.start(cx, client, job, seal).err()?;
        Some(native::encode_error(sid, code, &message))
    }

    /// Submits a job for a request that passed every check.
    /// A sealed request's reply is sealed for `seal`'s user.
    fn start(
        &mut self,
        cx: &mut Cx<'_>,
        client: Client,
        job: Job,
        seal: Option<RequestSeal>,
    ) -> Result<(), (u64, u32, String)> {
        let sid = client.sid;
        let token = cx.token();
        match cx.submit(token, job) {
            Ok(job) => {
                if let Some(seal) = seal {
                    self.sessions.sealed.insert(token, ReplySeal::new(seal));
                }
                self.sessions.insert(client, job, token);
                Ok(())
            }
            Err(failure) => Err((sid, failure.code, failure.message)),
        }
    }
}

/// Sends one reply message to a client. Replies to one client that follow each other share
/// one ZeroMQ message (the protocol allows several per message): fewer sends, same order.
fn send_reply(cx: &mut Cx<'_>, client: &Client, message: Bytes) {
    let (endpoint, peer, delimiter) = (client.endpoint, &client.peer, client.delimiter);
    if let Some(Output::Send {
        endpoint: e,
        frames,
    }) = cx.out().back_mut()
    {
        let header = if delimiter { 2 } else { 1 };
        let same_client = *e == endpoint
            && frames.first() == Some(peer)
            && (frames.len() > header)
            && (!delimiter || frames.get(1).is_some_and(|f| f.is_empty()))
            && (delimiter || frames.get(1).is_some_and(|f| !f.is_empty()));
        if same_client && frames.len() < header + MAX_MESSAGES_PER_SEND {
            frames.push(message);
            return;
        }
    }
    let frames = reply_frames(peer.clone(), delimiter, message);
    cx.out().push_back(Output::Send { endpoint, frames });
}

/// The reply frames for a client: identity, the delimiter if it used one, the message.
fn reply_frames(peer: Bytes, delimiter: bool, message: Bytes) -> Vec<Bytes> {
    if delimiter {
        vec![peer, Bytes::new(), message]
    } else {
        vec![peer, message]
    }
}

/// One reply event as a native-protocol message.
fn reply_message(sid: u64, event: &ReplyEvent) -> Bytes {
    match event {
        ReplyEvent::Chunk(data) => native::encode_chunk(sid, data),
        ReplyEvent::End => native::encode_choke(sid),
        // Native jobs stream; a collected reply would only come from a mode mix-up, and is
        // still delivered whole rather than lost.
        ReplyEvent::Collected(chunks) => {
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            let mut out = native::encode_chunk(sid, &joined).to_vec();
            out.extend_from_slice(&native::encode_choke(sid));
            Bytes::from(out)
        }
        ReplyEvent::Error(f) => native::encode_error(sid, f.code, &f.message),
        // Dropped by `reply` before it gets here.
        ReplyEvent::Head(_) => Bytes::new(),
    }
}

/// A native request's policy as the engine's.
pub(super) fn policy_of(policy: &Policy) -> JobPolicy {
    JobPolicy {
        urgent: policy.urgent,
        timeout: policy.timeout_ms.map(Duration::from_millis),
        deadline: policy.deadline_ms.map(Duration::from_millis),
    }
}
