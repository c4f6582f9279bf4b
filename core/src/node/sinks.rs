//! zeromq-sink (PROTOCOL.md §4): every message on a PULL socket a job whose reply is
//! published; the frames are the request's chunks. zeromq-subscriber (`subscriber.rs`) is
//! the same driver on a SUB socket.

use bytes::Bytes;

use super::driver::{Binding, Cx, Driver, DriverInput, Job};
use super::io::SocketKind;
use crate::engine::ReplyEvent;
use crate::manifest::keys::{endpoint, max_message, Ctx, Obj, Problems, Role};
use crate::manifest::{Task, TaskKind};
use crate::process::LogLevel;

#[derive(Debug)]
pub(super) struct Sink {
    binding: Binding,
    max_message: usize,
}

/// zeromq-sink: `endpoint` (bound), `max-message`.
pub(crate) fn parse_sink(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::ZeromqSink {
        endpoint: endpoint(o, Role::Bind, p),
        max_message: max_message(o, ctx, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::ZeromqSink {
        endpoint,
        max_message,
    } = &task.kind
    else {
        return None;
    };
    let binding = Binding::new(SocketKind::Pull, endpoint);
    Some(Box::new(Sink::new(binding, *max_message)))
}

impl Sink {
    /// A sink on `binding` (a PULL socket, or a subscriber's SUB).
    pub(super) fn new(binding: Binding, max_message: usize) -> Sink {
        Sink {
            binding,
            max_message,
        }
    }
}

impl Driver for Sink {
    fn binding(&self) -> Option<Binding> {
        Some(self.binding.clone())
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        let DriverInput::Received { frames, .. } = input else {
            return;
        };
        let size: usize = frames.iter().map(Bytes::len).sum();
        let max_message = self.max_message;
        if size > max_message {
            let message = format!(
                "{}/{}: dropped a message of {size} bytes (max-message {max_message})",
                cx.app_name(),
                cx.task_name()
            );
            cx.log(LogLevel::Warn, message);
            return;
        }
        if let Err(failure) = cx.submit(0, Job::collect(frames, max_message)) {
            let message = format!(
                "{}/{}: dropped a message: {failure}",
                cx.app_name(),
                cx.task_name()
            );
            cx.log(LogLevel::Warn, message);
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, _token: u64, event: ReplyEvent) {
        cx.publish_reply(event);
    }
}
