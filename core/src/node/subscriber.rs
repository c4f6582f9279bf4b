//! zeromq-subscriber (PROTOCOL.md §4): a SUB socket connected to `endpoint`, subscribed to
//! each prefix (none: everything); every message is a job whose reply is published, as for a
//! sink (`sinks.rs`).

use bytes::Bytes;

use super::driver::{Binding, Driver};
use super::io::SocketKind;
use super::sinks::Sink;
use crate::manifest::keys::{endpoint, max_message, strings, Ctx, Obj, Problems, Role};
use crate::manifest::{Task, TaskKind};

/// zeromq-subscriber: `endpoint` (connected), `subscribe` (prefixes), `max-message`.
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    TaskKind::ZeromqSubscriber {
        endpoint: endpoint(o, Role::Connect, p),
        subscribe: o.opt("subscribe", p, strings).unwrap_or_default(),
        max_message: max_message(o, ctx, p),
    }
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::ZeromqSubscriber {
        endpoint,
        subscribe,
        max_message,
    } = &task.kind
    else {
        return None;
    };
    let mut binding = Binding::new(SocketKind::Sub, endpoint);
    binding.subscribe = if subscribe.is_empty() {
        vec![Bytes::new()]
    } else {
        subscribe.iter().map(|s| Bytes::from(s.clone())).collect()
    };
    Some(Box::new(Sink::new(binding, *max_message)))
}
