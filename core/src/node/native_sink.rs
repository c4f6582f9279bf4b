//! native-sink (PROTOCOL.md §4): each frame of a message a native message; `[3]`, `[4]`...,
//! `[5]` make one job whose reply is published. Only complete requests in one multipart
//! message are taken (a PULL socket has no reply path to report a partial one, so it is
//! logged and dropped).

use bytes::Bytes;

use super::driver::{Binding, Cx, Driver, DriverInput, Job};
use super::io::SocketKind;
use super::native_server::policy_of;
use crate::codec::native::NativeMessage;
use crate::engine::{ReplyEvent, ReplyMode};
use crate::manifest::keys::{endpoint, max_message, Ctx, Obj, Problems, Role};
use crate::manifest::{Task, TaskKind};
use crate::process::LogLevel;

#[derive(Debug)]
pub(super) struct NativeSink {
    endpoint: String,
    max_message: usize,
}

/// native-sink: `endpoint` (bound), `max-message`.
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::NativeSink {
        endpoint: endpoint(o, Role::Bind, p),
        max_message: max_message(o, ctx, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::NativeSink {
        endpoint,
        max_message,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(NativeSink {
        endpoint: endpoint.clone(),
        max_message: *max_message,
    }))
}

/// A request being read: its sid, the job, its chunks so far.
type Open = (u64, Job, Vec<Bytes>);

impl Driver for NativeSink {
    fn binding(&self) -> Option<Binding> {
        Some(Binding::new(SocketKind::Pull, &self.endpoint))
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        let DriverInput::Received { frames, .. } = input else {
            return;
        };
        let mut problems = Vec::new();
        let mut current: Option<Open> = None;
        for frame in frames {
            match NativeMessage::decode(&frame, self.max_message) {
                Ok(message) => self.step(cx, message, &mut current, &mut problems),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if current.is_some() {
            problems.push("a request without its end".to_owned());
        }
        if let Some(first) = problems.first() {
            let message = format!(
                "{}: native-sink dropped input ({} problem(s)): {first}",
                cx.app_name(),
                problems.len()
            );
            cx.log(LogLevel::Warn, message);
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, _token: u64, event: ReplyEvent) {
        cx.publish_reply(event);
    }
}

impl NativeSink {
    /// One message of the frame sequence.
    fn step(
        &self,
        cx: &mut Cx<'_>,
        message: NativeMessage,
        current: &mut Option<Open>,
        problems: &mut Vec<String>,
    ) {
        match message {
            NativeMessage::Open {
                sid, event, policy, ..
            } => {
                if current.is_some() {
                    problems.push("a request opened before the previous one ended".to_owned());
                }
                let job = Job {
                    event: (!event.is_empty()).then(|| event.as_str().into()),
                    policy: policy_of(&policy),
                    mode: ReplyMode::Collect {
                        limit: self.max_message,
                    },
                    origin: None,
                    body: None,
                };
                *current = Some((sid, job, Vec::new()));
            }
            NativeMessage::Chunk { sid, data } => match current.as_mut() {
                Some((open, _, chunks)) if *open == sid => chunks.push(data),
                _ => problems.push(format!("a chunk for sid {sid}, which is not open")),
            },
            NativeMessage::Choke { sid } => match current.take() {
                Some((open, mut job, chunks)) if open == sid => {
                    job.body = Some(chunks);
                    if let Err(failure) = cx.submit(0, job) {
                        problems.push(format!("request {sid} refused: {failure}"));
                    }
                }
                other => {
                    *current = other;
                    problems.push(format!("an end for sid {sid}, which is not open"));
                }
            },
            _ => problems.push("a message a sink does not take (only 3, 4 and 5)".to_owned()),
        }
    }
}
