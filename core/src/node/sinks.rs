//! Sinks and subscribers (PROTOCOL.md §4): every message a job whose reply is published.

use bytes::Bytes;

use super::native_server::policy_of;
use super::route::Route;
use super::{EndpointOwner, Node};
use crate::codec::native::NativeMessage;
use crate::engine::{JobPolicy, JobRequest, ReplyMode};
use crate::manifest::TaskKind;
use crate::process::LogLevel;
use crate::time::Now;

impl Node {
    /// zeromq-sink and zeromq-subscriber: the frames are the request's chunks.
    pub(super) fn sink_received(&mut self, now: Now, owner: EndpointOwner, frames: Vec<Bytes>) {
        let Some(task) = owner.task else { return };
        let Some(app) = self.apps.get_mut(&owner.app) else {
            return;
        };
        let max_message = match app.manifest.tasks.get(task).map(|t| &t.kind) {
            Some(
                TaskKind::ZeromqSink { max_message, .. }
                | TaskKind::ZeromqSubscriber { max_message, .. },
            ) => *max_message,
            _ => return,
        };
        let size: usize = frames.iter().map(Bytes::len).sum();
        let name = app.name.clone();
        let task_name = app.tasks[task].name.clone();
        if size > max_message {
            self.log(
                LogLevel::Warn,
                format!("{name}/{task_name}: dropped a message of {size} bytes (max-message {max_message})"),
            );
            return;
        }
        let request = JobRequest {
            task,
            event: task_name.clone(),
            policy: JobPolicy::default(),
            reply: Route::Publish { task },
            mode: ReplyMode::Collect { limit: max_message },
            origin: None,
            body: Some(frames),
        };
        if let Err(failure) = app.engine.submit(now.mono, request) {
            self.log(
                LogLevel::Warn,
                format!("{name}/{task_name}: dropped a message: {failure}"),
            );
        }
    }

    /// native-sink: each frame a native message; `[3]`, `[4]`..., `[5]` make one job. Only
    /// complete requests in one multipart message are taken (a PULL socket has no reply
    /// path to report a partial one, so it is logged and dropped).
    pub(super) fn native_sink_received(
        &mut self,
        now: Now,
        owner: EndpointOwner,
        frames: Vec<Bytes>,
    ) {
        let Some(task) = owner.task else { return };
        let Some(app) = self.apps.get_mut(&owner.app) else {
            return;
        };
        let max_message = match app.manifest.tasks.get(task).map(|t| &t.kind) {
            Some(TaskKind::NativeSink { max_message, .. }) => *max_message,
            _ => return,
        };
        let name = app.name.clone();
        let mut problems = Vec::new();
        let mut current: Option<(u64, JobRequest<Route>, Vec<Bytes>)> = None;
        for frame in frames {
            match NativeMessage::decode(&frame, max_message) {
                Ok(NativeMessage::Open {
                    sid, event, policy, ..
                }) => {
                    if current.is_some() {
                        problems.push("a request opened before the previous one ended".to_owned());
                    }
                    let event = if event.is_empty() {
                        app.tasks[task].name.clone()
                    } else {
                        event.as_str().into()
                    };
                    let request = JobRequest {
                        task,
                        event,
                        policy: policy_of(&policy),
                        reply: Route::Publish { task },
                        mode: ReplyMode::Collect { limit: max_message },
                        origin: None,
                        body: None,
                    };
                    current = Some((sid, request, Vec::new()));
                }
                Ok(NativeMessage::Chunk { sid, data }) => match current.as_mut() {
                    Some((open, _, chunks)) if *open == sid => chunks.push(data),
                    _ => problems.push(format!("a chunk for sid {sid}, which is not open")),
                },
                Ok(NativeMessage::Choke { sid }) => match current.take() {
                    Some((open, mut request, chunks)) if open == sid => {
                        request.body = Some(chunks);
                        if let Err(failure) = app.engine.submit(now.mono, request) {
                            problems.push(format!("request {sid} refused: {failure}"));
                        }
                    }
                    other => {
                        current = other;
                        problems.push(format!("an end for sid {sid}, which is not open"));
                    }
                },
                Ok(_) => {
                    problems.push("a message a sink does not take (only 3, 4 and 5)".to_owned())
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        if current.is_some() {
            problems.push("a request without its end".to_owned());
        }
        if let Some(first) = problems.first() {
            let message = format!(
                "{name}: native-sink dropped input ({} problem(s)): {first}",
                problems.len()
            );
            self.log(LogLevel::Warn, message);
        }
    }
}
