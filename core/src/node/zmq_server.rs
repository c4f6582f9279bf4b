//! zeromq-server (PROTOCOL.md §3): `[routing..., "", body...]` in, one multipart reply out
//! when the job ends.

use bytes::Bytes;

use super::driver::{Binding, Cx, Driver, DriverInput, Handover, Job};
use super::io::{Output, SocketKind};
use crate::engine::ReplyEvent;
use crate::ids::{EndpointId, IdMap};
use crate::manifest::keys::{endpoint, max_message, Ctx, Obj, Problems, Role};
use crate::manifest::{Task, TaskKind, DEFAULT_REPLY_LIMIT};
use crate::status::{self, Failure};

const OK: &[u8] = b"ok";
const ERROR: &[u8] = b"error";

/// The reply for a terminal event: `[routing..., "", "ok", chunks...]` or
/// `[routing..., "", "error", {"code", "message"}]`. Nothing for a non-terminal event.
fn reply_frames(mut envelope: Vec<Bytes>, event: ReplyEvent) -> Option<Vec<Bytes>> {
    envelope.push(Bytes::new());
    match event {
        ReplyEvent::Collected(chunks) => {
            envelope.push(Bytes::from_static(OK));
            envelope.extend(chunks);
        }
        ReplyEvent::End => envelope.push(Bytes::from_static(OK)),
        ReplyEvent::Error(failure) => {
            envelope.push(Bytes::from_static(ERROR));
            envelope.push(error_body(&failure));
        }
        ReplyEvent::Chunk(_) | ReplyEvent::Head(_) => return None,
    }
    Some(envelope)
}

fn error_body(failure: &Failure) -> Bytes {
    let json = serde_json::json!({"code": failure.code, "message": failure.message});
    Bytes::from(json.to_string())
}

/// Requests waiting for their reply, by token: the endpoint and the client's routing frames.
type Clients = IdMap<u64, (EndpointId, Vec<Bytes>)>;

#[derive(Debug)]
pub(super) struct ZmqServer {
    endpoint: String,
    reply_limit: usize,
    max_message: usize,
    clients: Clients,
}

/// zeromq-server: `endpoint` (bound), `reply-limit` (bytes), `max-message`.
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::ZeromqServer {
        endpoint: endpoint(o, Role::Bind, p),
        reply_limit: o.int("reply-limit", 1, p).unwrap_or(DEFAULT_REPLY_LIMIT),
        max_message: max_message(o, ctx, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::ZeromqServer {
        endpoint,
        reply_limit,
        max_message,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(ZmqServer {
        endpoint: endpoint.clone(),
        reply_limit: *reply_limit,
        max_message: *max_message,
        clients: Clients::default(),
    }))
}

impl Driver for ZmqServer {
    fn binding(&self) -> Option<Binding> {
        Some(Binding::new(SocketKind::Router, &self.endpoint).with_max_message(self.max_message))
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        if let DriverInput::Received { endpoint, frames } = input {
            self.request(cx, endpoint, frames);
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, token: u64, event: ReplyEvent) {
        if !event.is_terminal() {
            return;
        }
        if let Some((endpoint, envelope)) = self.clients.remove(&token) {
            send(cx, endpoint, envelope, event);
        }
    }

    /// Requests in flight move: their replies come to the new version's driver.
    fn hand_over(&mut self, _cx: &mut Cx<'_>) -> Option<Handover> {
        Some(Box::new(std::mem::take(&mut self.clients)))
    }

    fn take_over(&mut self, _cx: &mut Cx<'_>, from: Handover) {
        if let Ok(clients) = from.downcast::<Clients>() {
            self.clients.extend(*clients);
        }
    }
}

impl ZmqServer {
    /// `[routing..., "", body...]`: a job, or an error reply at once.
    fn request(&mut self, cx: &mut Cx<'_>, endpoint: EndpointId, mut frames: Vec<Bytes>) {
        let Some(split) = frames.iter().position(|f| f.is_empty()) else {
            // No delimiter: the routing frame ROUTER added is all we can address.
            let envelope = frames.into_iter().take(1).collect();
            let failure = Failure::new(
                status::BAD_REQUEST,
                "a request must carry an empty delimiter frame before its body",
            );
            send(cx, endpoint, envelope, ReplyEvent::Error(failure));
            return;
        };
        let body: Vec<Bytes> = frames.split_off(split + 1);
        frames.truncate(split);
        let envelope = frames;
        let size: usize = body.iter().map(Bytes::len).sum();
        let max_message = self.max_message;
        if size > max_message {
            let message = format!("request of {size} bytes is over the limit of {max_message}");
            let failure = Failure::new(status::TOO_LARGE, message);
            send(cx, endpoint, envelope, ReplyEvent::Error(failure));
            return;
        }
        let job = Job::collect(body, self.reply_limit);
        let token = cx.token();
        match cx.submit(token, job) {
            Ok(_) => {
                self.clients.insert(token, (endpoint, envelope));
            }
            Err(failure) => send(cx, endpoint, envelope, ReplyEvent::Error(failure)),
        }
    }
}

fn send(cx: &mut Cx<'_>, endpoint: EndpointId, envelope: Vec<Bytes>, event: ReplyEvent) {
    if let Some(frames) = reply_frames(envelope, event) {
        cx.out().push_back(Output::Send { endpoint, frames });
    }
}
