//! The native protocol on a ROUTER (PROTOCOL.md §2): requests stream in, replies stream out,
//! each by its client-chosen sid.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::route::Route;
use super::{EndpointOwner, Node};
use crate::codec::native::{self, NativeMessage, Policy};
use crate::engine::{JobId, JobPolicy, JobRequest, Origin, ReplyEvent, ReplyMode};
use crate::ids::{AppId, EndpointId};
use crate::process::LogLevel;
use crate::status::{self, Failure};
use crate::time::Now;

/// Open requests by (endpoint, client identity, sid), and how many each client has. They are
/// the node's, not an app's: during a redeploy one endpoint serves requests that belong to
/// two versions of an app, and a queued request moves from one to the other.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    open: HashMap<(EndpointId, Bytes, u64), (AppId, JobId)>,
    per_peer: HashMap<(EndpointId, Bytes), usize>,
}

impl Sessions {
    fn get(&self, endpoint: EndpointId, peer: &Bytes, sid: u64) -> Option<(AppId, JobId)> {
        self.open.get(&(endpoint, peer.clone(), sid)).copied()
    }

    /// A request's job moved to another app's engine (a redeploy).
    pub fn moved(&mut self, endpoint: EndpointId, peer: &Bytes, sid: u64, to: (AppId, JobId)) {
        if let Some(entry) = self.open.get_mut(&(endpoint, peer.clone(), sid)) {
            *entry = to;
        }
    }

    fn open_count(&self, endpoint: EndpointId, peer: &Bytes) -> usize {
        self.per_peer
            .get(&(endpoint, peer.clone()))
            .copied()
            .unwrap_or(0)
    }

    fn insert(&mut self, endpoint: EndpointId, peer: Bytes, sid: u64, job: (AppId, JobId)) {
        *self.per_peer.entry((endpoint, peer.clone())).or_insert(0) += 1;
        self.open.insert((endpoint, peer, sid), job);
    }

    /// Forgets a request once its terminal reply is on its way.
    pub fn close(&mut self, endpoint: EndpointId, peer: &Bytes, sid: u64) {
        if self.open.remove(&(endpoint, peer.clone(), sid)).is_some() {
            let key = (endpoint, peer.clone());
            if let Some(count) = self.per_peer.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.per_peer.remove(&key);
                }
            }
        }
    }
}

/// The reply frames for a client: identity, the delimiter if it used one, the message.
pub(super) fn reply_frames(peer: Bytes, delimiter: bool, message: Bytes) -> Vec<Bytes> {
    if delimiter {
        vec![peer, Bytes::new(), message]
    } else {
        vec![peer, message]
    }
}

/// One reply event as a native-protocol message.
pub(super) fn reply_message(sid: u64, event: &ReplyEvent) -> Bytes {
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
        // The native protocol has no reply head; `App::deliver` drops heads before this.
        ReplyEvent::Head(_) => Bytes::new(),
    }
}

pub(super) fn policy_of(policy: &Policy) -> JobPolicy {
    JobPolicy {
        urgent: policy.urgent,
        timeout: policy.timeout_ms.map(Duration::from_millis),
        deadline: policy.deadline_ms.map(Duration::from_millis),
    }
}

impl Node {
    /// A message on a native-server endpoint: `[identity, ("",) message...]`.
    pub(super) fn native_received(
        &mut self,
        now: Now,
        endpoint: EndpointId,
        owner: EndpointOwner,
        frames: Vec<Bytes>,
    ) {
        let task = owner.task.unwrap_or(0);
        let mut incoming = frames.into_iter();
        let Some(peer) = incoming.next() else { return };
        let mut rest: Vec<Bytes> = incoming.collect();
        let delimiter = rest.first().is_some_and(|f| f.is_empty());
        if delimiter {
            rest.remove(0);
        }
        let max_open = self.config.max_open_per_peer;
        let sessions = &mut self.sessions;
        let apps = &mut self.apps;
        let Some(app) = apps.get(&owner.app) else {
            return;
        };
        let max_message = match app.manifest.tasks.get(task).map(|t| &t.kind) {
            Some(crate::manifest::TaskKind::NativeServer { max_message, .. }) => *max_message,
            _ => app.engine.config().max_message,
        };
        let mut replies: Vec<Bytes> = Vec::new();
        let mut bad = Vec::new();
        for frame in rest {
            let message = match NativeMessage::decode(&frame, max_message) {
                Ok(m) => m,
                Err(e) => {
                    replies.push(native::encode_error(0, status::BAD_REQUEST, &e.to_string()));
                    bad.push(e.to_string());
                    continue;
                }
            };
            match message {
                NativeMessage::Open {
                    sid,
                    event,
                    policy,
                    auth,
                } => {
                    if sid == 0 {
                        replies.push(native::encode_error(
                            0,
                            status::BAD_REQUEST,
                            "sid 0 is reserved",
                        ));
                        continue;
                    }
                    if sessions.get(endpoint, &peer, sid).is_some() {
                        let message = format!("sid {sid} is already open");
                        replies.push(native::encode_error(sid, status::BAD_REQUEST, &message));
                        continue;
                    }
                    if sessions.open_count(endpoint, &peer) >= max_open {
                        let message =
                            format!("too many open requests on this connection (limit {max_open})");
                        replies.push(native::encode_error(sid, status::UNAVAILABLE, &message));
                        continue;
                    }
                    let Some(app) = apps.get_mut(&owner.app) else {
                        continue;
                    };
                    let event: Arc<str> = if event.is_empty() {
                        app.tasks[task].name.clone()
                    } else {
                        Arc::from(event.as_str())
                    };
                    let origin = auth.map(|a| {
                        Box::new(Origin {
                            user: Some(a.user),
                            peer: None,
                            http: None,
                        })
                    });
                    let request = JobRequest {
                        task,
                        event,
                        policy: policy_of(&policy),
                        reply: Route::Native {
                            endpoint,
                            peer: peer.clone(),
                            delimiter,
                            sid,
                        },
                        mode: ReplyMode::Stream,
                        origin,
                        body: None,
                    };
                    match app.engine.submit(now.mono, request) {
                        Ok(job) => sessions.insert(endpoint, peer.clone(), sid, (owner.app, job)),
                        Err(Failure { code, message }) => {
                            replies.push(native::encode_error(sid, code, &message))
                        }
                    }
                }
                NativeMessage::Chunk { sid, data } => {
                    if let Some((owner, job)) = sessions.get(endpoint, &peer, sid) {
                        if let Some(app) = apps.get_mut(&owner) {
                            app.engine.push_chunk(job, data);
                        }
                    }
                }
                NativeMessage::Choke { sid } => {
                    if let Some((owner, job)) = sessions.get(endpoint, &peer, sid) {
                        if let Some(app) = apps.get_mut(&owner) {
                            app.engine.end_request(job);
                        }
                    }
                }
                NativeMessage::Cancel { sid } => {
                    if let Some((owner, job)) = sessions.get(endpoint, &peer, sid) {
                        if let Some(app) = apps.get_mut(&owner) {
                            app.engine.cancel(now.mono, job);
                        }
                    }
                }
                NativeMessage::Ping { token } => replies.push(native::encode_pong(token)),
                NativeMessage::Error { sid, .. } | NativeMessage::Pong { token: sid } => {
                    let message = format!("unexpected message from a client (sid or token {sid})");
                    replies.push(native::encode_error(0, status::BAD_REQUEST, &message));
                }
            }
        }
        let app_name = apps.get(&owner.app).map(|a| a.name.clone());
        let app_name = app_name.as_deref().unwrap_or("?");
        for reply in replies {
            self.out.push_back(super::Output::Send {
                endpoint,
                frames: reply_frames(peer.clone(), delimiter, reply),
            });
        }
        if let Some(first) = bad.first() {
            self.log(
                LogLevel::Debug,
                format!(
                    "{app_name}: {} bad native frame(s) from a client: {first}",
                    bad.len()
                ),
            );
        }
    }
}
