//! zeromq-server (PROTOCOL.md §3): `[routing..., "", body...]` in, one multipart reply out
//! when the job ends.

use bytes::Bytes;

use super::route::Route;
use super::{EndpointOwner, Node, Output};
use crate::engine::{JobPolicy, JobRequest, ReplyEvent, ReplyMode};
use crate::ids::EndpointId;
use crate::manifest::TaskKind;
use crate::status::{self, Failure};
use crate::time::Now;

const OK: &[u8] = b"ok";
const ERROR: &[u8] = b"error";

/// The reply for a terminal event: `[routing..., "", "ok", chunks...]` or
/// `[routing..., "", "error", {"code", "message"}]`. Nothing for a non-terminal event.
pub(super) fn reply_frames(mut envelope: Vec<Bytes>, event: ReplyEvent) -> Option<Vec<Bytes>> {
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

impl Node {
    pub(super) fn server_received(
        &mut self,
        now: Now,
        endpoint: EndpointId,
        owner: EndpointOwner,
        frames: Vec<Bytes>,
    ) {
        let Some(task) = owner.task else { return };
        let Some(app) = self.apps.get_mut(&owner.app) else {
            return;
        };
        let (reply_limit, max_message) = match app.manifest.tasks.get(task).map(|t| &t.kind) {
            Some(TaskKind::ZeromqServer {
                reply_limit,
                max_message,
                ..
            }) => (*reply_limit, *max_message),
            _ => return,
        };
        let Some(split) = frames.iter().position(|f| f.is_empty()) else {
            // No delimiter: the routing frame ROUTER added is all we can address.
            let envelope = frames.into_iter().take(1).collect();
            let failure = Failure::new(
                status::BAD_REQUEST,
                "a request must carry an empty delimiter frame before its body",
            );
            if let Some(frames) = reply_frames(envelope, ReplyEvent::Error(failure)) {
                self.out.push_back(Output::Send { endpoint, frames });
            }
            return;
        };
        let mut frames = frames;
        let body: Vec<Bytes> = frames.split_off(split + 1);
        frames.truncate(split);
        let envelope = frames;
        let size: usize = body.iter().map(Bytes::len).sum();
        if size > max_message {
            let message = format!("request of {size} bytes is over the limit of {max_message}");
            let failure = Failure::new(status::TOO_LARGE, message);
            if let Some(frames) = reply_frames(envelope, ReplyEvent::Error(failure)) {
                self.out.push_back(Output::Send { endpoint, frames });
            }
            return;
        }
        let request = JobRequest {
            task,
            event: app.tasks[task].name.clone(),
            policy: JobPolicy::default(),
            reply: Route::Server {
                endpoint,
                envelope: envelope.clone(),
            },
            mode: ReplyMode::Collect { limit: reply_limit },
            origin: None,
            body: Some(body),
        };
        if let Err(failure) = app.engine.submit(now.mono, request) {
            if let Some(frames) = reply_frames(envelope, ReplyEvent::Error(failure)) {
                self.out.push_back(Output::Send { endpoint, frames });
            }
        }
    }
}
