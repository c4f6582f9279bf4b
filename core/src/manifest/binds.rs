//! Two sockets of one app that cannot both be bound on a node (pubsub and every listening
//! task) would fail at start, half-started; this says so at parse time instead.

use super::endpoint::{Endpoint, Role};
use super::error::Problems;
use super::pubsub::PubsubConfig;
use super::tasks::Task;
use std::collections::BTreeMap;

/// Reports every bind that clashes with an earlier one (pubsub first, then tasks by name).
pub(crate) fn check(pubsub: Option<&PubsubConfig>, tasks: &[Task], p: &mut Problems) {
    let pubsub = pubsub.map(|ps| ("pubsub.endpoint".to_owned(), ps.endpoint.as_str()));
    let tasks = tasks.iter().filter_map(|t| match t.kind.endpoint() {
        Some((ep, Role::Bind)) => Some((format!("tasks.{}.endpoint", t.name), ep)),
        _ => None,
    });
    let mut seen = Seen::default();
    for (path, raw) in pubsub.into_iter().chain(tasks) {
        // Invalid endpoints were reported already.
        let Ok(ep) = Endpoint::parse(raw) else {
            continue;
        };
        if let Some((other_path, other_raw)) = seen.clash_or_insert(&ep, &path, raw) {
            let msg = if other_raw == raw {
                format!("{raw:?} is already bound by {other_path}")
            } else {
                format!("{raw:?} clashes with {other_raw:?} of {other_path}")
            };
            p.add(path, msg);
        }
    }
}

/// Binds so far, indexed so a manifest with many tasks is checked in `n log n`, not `n²`
/// (it is fuzzed). Values are (key path, endpoint as written).
#[derive(Default)]
struct Seen {
    /// ipc paths and inproc names, with the transport so the two never mix.
    names: BTreeMap<(bool, String), (String, String)>,
    /// TCP: the first bind on each port, whatever its host.
    first_on_port: BTreeMap<u16, (String, String)>,
    /// TCP: a bind on every interface of a port.
    any_on_port: BTreeMap<u16, (String, String)>,
    /// TCP: binds on one named host or address.
    exact: BTreeMap<(u16, String), (String, String)>,
}

impl Seen {
    /// The earlier bind `ep` clashes with, if any; otherwise records it.
    fn clash_or_insert(
        &mut self,
        ep: &Endpoint,
        path: &str,
        raw: &str,
    ) -> Option<(String, String)> {
        let me = (path.to_owned(), raw.to_owned());
        match ep {
            Endpoint::Ipc(name) | Endpoint::Inproc(name) => {
                let key = (matches!(ep, Endpoint::Ipc(_)), name.clone());
                if let Some(other) = self.names.get(&key) {
                    return Some(other.clone());
                }
                self.names.insert(key, me);
            }
            // `*` ports are chosen at bind time, each its own.
            Endpoint::Tcp { port: None, .. } => {}
            Endpoint::Tcp {
                host,
                port: Some(port),
            } => {
                let port = *port;
                let host_key = (!host.is_any()).then(|| host.to_string());
                let clash = match &host_key {
                    None => self.first_on_port.get(&port),
                    Some(h) => self
                        .any_on_port
                        .get(&port)
                        .or_else(|| self.exact.get(&(port, h.clone()))),
                };
                if let Some(other) = clash {
                    return Some(other.clone());
                }
                self.first_on_port.entry(port).or_insert_with(|| me.clone());
                match host_key {
                    None => {
                        self.any_on_port.insert(port, me);
                    }
                    Some(h) => {
                        self.exact.insert((port, h), me);
                    }
                }
            }
        }
        None
    }
}
