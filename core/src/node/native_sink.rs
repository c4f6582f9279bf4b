//! native-sink (PROTOCOL.md §4): each frame of a message a native message; `[3]`, `[4]`...,
//! `[5]` make one job whose reply is published. Only complete requests in one multipart
//! message are taken (a PULL socket has no reply path to report a partial one, so it is
//! logged and dropped).

use bytes::Bytes;

use super::driver::{Binding, Cx, Driver, DriverInput, Job};
use super::io::SocketKind;
use super::native_auth;
use super::native_session::{self, Credential};
use super::native_server::policy_of;
use crate::codec::native::{NativeMessage, Policy};
use crate::engine::{Origin, ReplyEvent, ReplyMode};
use crate::manifest::keys::{endpoint, max_message, task_security, Ctx, Obj, Problems, Role};
use crate::manifest::{SecurityConfig, Task, TaskKind};
use crate::process::LogLevel;

#[derive(Debug)]
pub(super) struct NativeSink {
    endpoint: String,
    max_message: usize,
    security: Option<SecurityConfig>,
}

/// native-sink: `endpoint` (bound), `max-message`, `security` (the app's by default).
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::NativeSink {
        endpoint: endpoint(o, Role::Bind, p),
        max_message: max_message(o, ctx, p),
        security: task_security(o, ctx.base_dir, ctx.security, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::NativeSink {
        endpoint,
        max_message,
        security,
    } = &task.kind
    else {
        return None;
    };
    Some(Box::new(NativeSink {
        endpoint: endpoint.clone(),
        max_message: *max_message,
        security: security.clone(),
    }))
}

/// A request being read: its sid, the job, its chunks so far, and what its signature check
/// said: `Ok(Some(digest))` for a verified signed request whose body must match, `Ok(None)`
/// for one that needs no check, `Err(why)` for a refused one (read to its end, then dropped).
type Open = (u64, Job, Vec<Bytes>, Result<Option<Bytes>, String>);

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
            match NativeMessage::decode_signed(&frame, self.max_message) {
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
        (message, signed): (NativeMessage, Option<Bytes>),
        current: &mut Option<Open>,
        problems: &mut Vec<String>,
    ) {
        match message {
            NativeMessage::Open {
                sid,
                event,
                policy,
                auth,
            } => {
                let credential = Credential::Signed(auth.as_ref().zip(signed.as_deref()));
                self.opened(cx, (sid, &event, &policy), credential, current, problems);
            }
            NativeMessage::OpenInSession {
                sid,
                event,
                policy,
                auth,
            } => {
                let credential = Credential::Session(&auth, signed.as_deref().unwrap_or_default());
                self.opened(cx, (sid, &event, &policy), credential, current, problems);
            }
            NativeMessage::Chunk { sid, data } => match current.as_mut() {
                Some((open, _, chunks, _)) if *open == sid => chunks.push(data),
                _ => problems.push(format!("a chunk for sid {sid}, which is not open")),
            },
            NativeMessage::Choke { sid } => match current.take() {
                Some((open, mut job, chunks, check)) if open == sid => {
                    let check = check.and_then(|digest| match digest {
                        Some(digest) => native_auth::check_body(cx, &digest, &chunks)
                            .map_err(|e| format!("{} {e}", e.code())),
                        None => Ok(()),
                    });
                    if let Err(why) = check {
                        problems.push(format!("request {sid} refused: {why}"));
                        return;
                    }
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

    /// An open: the job, and what the task's `security` says of its credential. A
    /// session-open is refused here: a sink has no reply path to send a session on.
    fn opened(
        &self,
        cx: &mut Cx<'_>,
        (sid, event, policy): (u64, &str, &Policy),
        credential: Credential<'_>,
        current: &mut Option<Open>,
        problems: &mut Vec<String>,
    ) {
        if current.is_some() {
            problems.push("a request opened before the previous one ended".to_owned());
        }
        let mut job = Job {
            event: (!event.is_empty()).then(|| event.into()),
            policy: policy_of(policy),
            mode: ReplyMode::Collect {
                limit: self.max_message,
            },
            origin: None,
            body: None,
        };
        let security = self.security.as_ref();
        let check = if native_session::is_session_open(&job) {
            Err("a native-sink cannot open sessions (it has no reply path)".to_owned())
        } else if policy.sealed {
            // Its reply would have to be sealed for the caller, and a sink's reply is
            // published to whoever listens: sealed requests go to a native-server.
            Err("400 a native-sink does not take sealed requests".to_owned())
        } else {
            credential
                .check(cx, security, false)
                .map(|verified| {
                    verified.map(|v| {
                        job.origin = Some(Box::new(Origin {
                            user: Some(v.user),
                            peer: None,
                            http: None,
                        }));
                        v.body
                    })
                })
                .map_err(|(code, message)| format!("{code} {message}"))
        };
        *current = Some((sid, job, Vec::new(), check));
    }
}
