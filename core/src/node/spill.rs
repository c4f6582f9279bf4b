//! Spillover (docs/cluster.md, "Spillover"): a native-server request that finds its app's
//! queue full is handed, once, to the least-loaded peer running the app, over the native
//! protocol, instead of being answered 503.
//!
//! The node keeps one ZeroMQ DEALER per peer endpoint (a *link*, pooled across requests and
//! apps), with a sid space of its own: each forwarded request gets a link sid, mapped to the
//! caller's (endpoint, identity, sid). The open goes out with `policy.hop = 1`, and a node
//! never forwards a request whose `hop` is not 0, so two full nodes cannot pass one back and
//! forth. The caller's chunks, end and cancel follow the open; the peer's chunks, end or
//! error come back with the caller's sid.
//!
//! A forwarded request always ends for its caller: with the peer's terminal message, or a
//! 503 when the link cannot be set up, a 502 when the peer leaves the peer table, restarts
//! (its `seq` jumps) or stops answering pings (three intervals), or a 520 when its
//! `deadline` passed without the peer ending it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use super::io::{BindError, Output, SocketKind};
use crate::cluster::balance::{spillover, Load, SpillRequest};
use crate::cluster::{AppState, PeerTable};
use crate::codec::native::{self, NativeMessage, Policy};
use crate::ids::EndpointId;
use crate::status;

/// Link endpoints are numbered from here, so they never meet the node's own (counted up
/// from 1) and the driver that opens one needs no access to the node's counter.
pub(super) const LINK_ENDPOINTS: u64 = 1 << 62;
/// How long past a forwarded request's deadline the node waits for the peer's answer (the
/// peer ends it at the deadline itself) before answering the caller.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(1);
/// Pings a link may leave unanswered, one per interval, before its requests fail.
const PING_MISSES: u32 = 3;
/// How far a peer's `seq` may run ahead of one per interval (with room for nodes announcing
/// a few times faster) before the peer is taken to have restarted: a restart makes it jump
/// to the new start time in milliseconds, thousands past the old `seq` after a second up.
const RESTART_JUMP: u64 = 1000;
const SEQ_PER_INTERVAL: u64 = 10;
/// The code a caller gets when the peer its request was handed to failed (went away, went
/// silent, could not be reached): 502, as HTTP's bad gateway, the code of a failed handler.
pub const BAD_GATEWAY: u32 = status::APP_ERROR;
/// The code the engine answers a passed deadline with.
const DEADLINE: u32 = status::DEADLINE;

/// Where a forwarded request's reply goes: the caller's ROUTER endpoint and identity, whether
/// it framed its messages with an empty delimiter, and its own sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Caller {
    pub endpoint: EndpointId,
    pub identity: Bytes,
    pub delimiter: bool,
    pub sid: u64,
}

/// A caller's request, by (endpoint, identity, sid).
pub(super) type CallerKey = (EndpointId, Bytes, u64);

impl Caller {
    fn key(&self) -> CallerKey {
        (self.endpoint, self.identity.clone(), self.sid)
    }
}

/// A request that may be handed on: what the native server read from the open.
#[derive(Debug, Clone)]
pub(super) struct Offer<'a> {
    pub app: &'a str,
    pub task: &'a str,
    pub event: &'a str,
    pub policy: &'a Policy,
    /// Whether this node's queue for the app is full.
    pub queue_full: bool,
    /// Whether the app has `cluster.spillover` on.
    pub spillover: bool,
}

/// What the node has counted for one app (`info APP`, `spillover`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SpillStats {
    /// Requests this node handed to a peer.
    pub forwarded_out: u64,
    /// Requests a peer handed to this node.
    pub forwarded_in: u64,
    /// Requests handed to a peer that ended in a 502 or 520 from this node (the link or the
    /// peer failed) rather than with the peer's own answer.
    pub forward_failures: u64,
}

#[derive(Debug)]
struct Link {
    endpoint: EndpointId,
    /// The peer's node id, to notice it leaving the table.
    peer: String,
    next_sid: u64,
    /// Forwarded requests not yet ended on this link.
    open: u64,
    /// The ping in flight (its token, when sent).
    ping: Option<(u64, Instant)>,
    next_ping: Option<Instant>,
    /// The peer's announcement `seq` as last seen, and when: a jump far past one per
    /// interval means it restarted (its `seq` starts at its start time in milliseconds).
    heard: Option<(u64, Instant)>,
}

#[derive(Debug)]
struct Forward {
    caller: Caller,
    app: String,
    /// When the node stops waiting for the peer: the request's deadline plus a grace.
    give_up: Option<Instant>,
}

/// Spillover's state inside the node: links, forwarded requests and counters.
#[derive(Debug, Default)]
pub(super) struct Spill {
    /// By peer endpoint address.
    links: BTreeMap<String, Link>,
    /// By (link, link sid).
    forwards: HashMap<(EndpointId, u64), Forward>,
    /// The forwards that have a `give_up`, soonest first: `timers` and `poll_timeout` run
    /// on every input and wake-up, so they look here instead of walking every forward.
    /// Kept exact by `forward`'s insert and `end`, the only places a forward comes and goes.
    give_ups: BTreeSet<(Instant, EndpointId, u64)>,
    callers: HashMap<CallerKey, (EndpointId, u64)>,
    stats: BTreeMap<String, SpillStats>,
    next_link: u64,
    next_token: u64,
}

/// What a caller sends after its open, for a request handed on.
#[derive(Debug, Clone)]
pub(super) enum Follow {
    Chunk(Bytes),
    Choke,
    Cancel,
}

impl Spill {
    pub fn owns(&self, endpoint: EndpointId) -> bool {
        endpoint.0 >= LINK_ENDPOINTS && self.links.values().any(|l| l.endpoint == endpoint)
    }

    pub fn is_forwarded(&self, key: &CallerKey) -> bool {
        self.callers.contains_key(key)
    }

    pub fn stats(&self, app: &str) -> SpillStats {
        self.stats.get(app).copied().unwrap_or_default()
    }

    /// Every app's counters (apps that never spilled are left out).
    pub fn info(&self) -> Value {
        let apps: serde_json::Map<String, Value> = (self.stats.iter())
            .map(|(app, s)| (app.clone(), json!(s)))
            .collect();
        json!({"apps": apps, "open": self.forwards.len(), "links": self.links.len()})
    }

    /// The counters in the Prometheus text format (docs/stats.md), one sample per app that
    /// has any.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        type Family = (&'static str, &'static str, fn(&SpillStats) -> u64);
        const FAMILIES: [Family; 3] = [
            (
                "cocaine_spillover_forwarded_out_total",
                "Requests handed to a peer because the app's queue was full.",
                |s| s.forwarded_out,
            ),
            (
                "cocaine_spillover_forwarded_in_total",
                "Requests a peer handed to this node.",
                |s| s.forwarded_in,
            ),
            (
                "cocaine_spillover_failures_total",
                "Requests handed to a peer that this node ended with an error (peer gone, silent, past the deadline).",
                |s| s.forward_failures,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (app, stats) in &self.stats {
                let app = app.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(out, "{name}{{app=\"{app}\"}} {}", value(stats));
            }
        }
        out
    }

    /// A peer handed a request to this node.
    pub fn count_forwarded_in(&mut self, app: &str) {
        self.stats.entry(app.to_owned()).or_default().forwarded_in += 1;
    }

    /// When the node next needs time for spillover.
    pub fn poll_timeout(&self, interval: Duration) -> Option<Instant> {
        let give_up = self.give_ups.first().map(|(at, _, _)| *at);
        let links = (self.links.values())
            .filter(|l| l.open > 0)
            .filter_map(|l| match l.ping {
                Some((_, sent)) => Some(sent + interval * PING_MISSES),
                None => l.next_ping,
            });
        give_up.into_iter().chain(links).min()
    }

    /// Hands a request whose queue is full to a peer: `true` when it went, so the caller's
    /// later messages follow it; `false` leaves it to this node (which answers 503).
    pub fn offer(
        &mut self,
        now: Instant,
        out: &mut VecDeque<Output>,
        cluster: Option<&PeerTable>,
        caller: Caller,
        offer: Offer<'_>,
    ) -> bool {
        let Some(table) = cluster else { return false };
        let request = SpillRequest {
            queue_full: offer.queue_full,
            spillover: offer.spillover,
            forwarded: offer.policy.hop != 0,
        };
        // Peers running the app with a task of this name; each peer's announced load is
        // corrected by the requests this node has handed it since (they are fresh, the
        // announcement may be an interval old).
        let candidates: Vec<(&str, &str, Load)> = table
            .running(offer.app)
            .filter(|(_, a)| a.state == AppState::Running)
            .filter_map(|(peer, a)| {
                let endpoint = a.tasks.get(offer.task)?;
                let in_flight = self.links.get(endpoint).map_or(0, |l| l.open);
                let load = Load::from(a).adjusted(i64::try_from(in_flight).unwrap_or(i64::MAX));
                Some((peer.node_id.as_str(), endpoint.as_str(), load))
            })
            .collect();
        let loads: Vec<Load> = candidates.iter().map(|c| c.2).collect();
        let crate::cluster::balance::Spill::Forward(chosen) = spillover(request, &loads) else {
            return false;
        };
        let (peer, address, _) = candidates[chosen];
        let (peer, address) = (peer.to_owned(), address.to_owned());
        let link = self.link(out, &peer, &address);
        let Some(l) = self.links.get_mut(&address) else {
            return false;
        };
        let sid = l.next_sid;
        l.next_sid += 1;
        l.open += 1;
        let policy = Policy {
            hop: 1,
            ..offer.policy.clone()
        };
        let open = native::encode_open(sid, offer.event, &policy, None);
        out.push_back(Output::Send {
            endpoint: link,
            frames: vec![open],
        });
        let give_up = (policy.deadline_ms)
            .map(|ms| now + Duration::from_millis(ms).saturating_add(DEADLINE_GRACE));
        self.callers.insert(caller.key(), (link, sid));
        if let Some(at) = give_up {
            self.give_ups.insert((at, link, sid));
        }
        self.forwards.insert(
            (link, sid),
            Forward {
                caller,
                app: offer.app.to_owned(),
                give_up,
            },
        );
        self.stats
            .entry(offer.app.to_owned())
            .or_default()
            .forwarded_out += 1;
        true
    }

    /// The link to a peer endpoint, opened the first time it is needed.
    fn link(&mut self, out: &mut VecDeque<Output>, peer: &str, address: &str) -> EndpointId {
        if let Some(link) = self.links.get_mut(address) {
            // A node that restarted with a new id at the same endpoint is the same link.
            link.peer = peer.to_owned();
            return link.endpoint;
        }
        let endpoint = EndpointId(LINK_ENDPOINTS + self.next_link);
        self.next_link += 1;
        out.push_back(Output::Bind {
            endpoint,
            kind: SocketKind::Dealer,
            address: address.to_owned(),
            subscribe: Vec::new(),
            max_message: None,
        });
        self.links.insert(
            address.to_owned(),
            Link {
                endpoint,
                peer: peer.to_owned(),
                next_sid: 1,
                open: 0,
                ping: None,
                next_ping: None,
                heard: None,
            },
        );
        endpoint
    }

    /// A caller's chunk, end or cancel for a request it handed on: sent to the peer. `false`
    /// when the request is not one handed on.
    pub fn follow(&mut self, out: &mut VecDeque<Output>, key: &CallerKey, what: Follow) -> bool {
        let Some(&(link, sid)) = self.callers.get(key) else {
            return false;
        };
        let message = match what {
            Follow::Chunk(data) => native::encode_chunk(sid, &data),
            Follow::Choke => native::encode_choke(sid),
            Follow::Cancel => native::encode_cancel(sid),
        };
        out.push_back(Output::Send {
            endpoint: link,
            frames: vec![message],
        });
        true
    }

    /// Messages from a peer on a link: replies go to their callers with the callers' sids.
    /// Returns what could not be read, for the log.
    pub fn received(
        &mut self,
        out: &mut VecDeque<Output>,
        link: EndpointId,
        frames: Vec<Bytes>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for frame in frames {
            if frame.is_empty() {
                continue; // a delimiter
            }
            // The frame is in memory already; the limit that matters was the peer's.
            match NativeMessage::decode(&frame, usize::MAX) {
                Ok(NativeMessage::Pong { token }) => self.pong(link, token),
                Ok(NativeMessage::Chunk { sid, data }) => {
                    if let Some(f) = self.forwards.get(&(link, sid)) {
                        let reply = native::encode_chunk(f.caller.sid, &data);
                        send_to_caller(out, &f.caller, reply);
                    }
                }
                Ok(NativeMessage::Choke { sid }) => {
                    if let Some(f) = self.end(link, sid) {
                        send_to_caller(out, &f.caller, native::encode_choke(f.caller.sid));
                    }
                }
                Ok(NativeMessage::Error { sid, code, message }) => {
                    if let Some(f) = self.end(link, sid) {
                        let reply = native::encode_error(f.caller.sid, code, &message);
                        send_to_caller(out, &f.caller, reply);
                    } else if sid == 0 {
                        problems.push(format!("the peer refused a message: {code} {message}"));
                    }
                }
                Ok(other) => problems.push(format!("unexpected message from a peer: {other:?}")),
                Err(e) => problems.push(format!("bad native frame from a peer: {e}")),
            }
        }
        problems
    }

    fn pong(&mut self, link: EndpointId, token: u64) {
        if let Some(l) = self.links.values_mut().find(|l| l.endpoint == link) {
            if l.ping.is_some_and(|(t, _)| t == token) {
                l.ping = None;
            }
        }
    }

    /// Forgets a forwarded request that ended; returns it.
    fn end(&mut self, link: EndpointId, sid: u64) -> Option<Forward> {
        let forward = self.forwards.remove(&(link, sid))?;
        if let Some(at) = forward.give_up {
            self.give_ups.remove(&(at, link, sid));
        }
        self.callers.remove(&forward.caller.key());
        if let Some(l) = self.links.values_mut().find(|l| l.endpoint == link) {
            l.open = l.open.saturating_sub(1);
            if l.open == 0 {
                l.ping = None;
                l.next_ping = None;
            }
        }
        Some(forward)
    }

    /// Ends a forwarded request with an error of this node's making.
    fn fail(
        &mut self,
        out: &mut VecDeque<Output>,
        link: EndpointId,
        sid: u64,
        code: u32,
        why: &str,
    ) {
        if let Some(f) = self.end(link, sid) {
            let reply = native::encode_error(f.caller.sid, code, why);
            send_to_caller(out, &f.caller, reply);
            self.stats.entry(f.app).or_default().forward_failures += 1;
        }
    }

    /// Fails every request on a link and closes it. Returns how many failed.
    fn drop_link(
        &mut self,
        out: &mut VecDeque<Output>,
        link: EndpointId,
        code: u32,
        why: &str,
    ) -> usize {
        let sids: Vec<u64> = (self.forwards.keys())
            .filter(|(l, _)| *l == link)
            .map(|(_, s)| *s)
            .collect();
        for sid in &sids {
            self.fail(out, link, *sid, code, why);
        }
        self.links.retain(|_, l| l.endpoint != link);
        out.push_back(Output::Unbind { endpoint: link });
        sids.len()
    }

    /// A link was set up, or could not be: then its requests fail at once.
    pub fn bound(
        &mut self,
        out: &mut VecDeque<Output>,
        link: EndpointId,
        result: Result<(), BindError>,
    ) -> Option<String> {
        let error = result.err()?;
        let address = (self.links.iter())
            .find(|(_, l)| l.endpoint == link)
            .map(|(a, _)| a.clone())?;
        let why = format!("spillover: cannot connect to the peer at {address}: {error}");
        // Nothing reached the peer: the request never started, and a 503 may be retried.
        self.drop_link(out, link, status::UNAVAILABLE, &why);
        Some(why)
    }

    /// Peers that left the table take their links and requests with them; due pings go out;
    /// requests past their deadline, and links whose pings went unanswered, fail. Returns
    /// lines for the log.
    pub fn timers(
        &mut self,
        now: Instant,
        out: &mut VecDeque<Output>,
        table: Option<&PeerTable>,
        interval: Duration,
    ) -> Vec<String> {
        let mut logs = Vec::new();
        // Runs after every input: with nothing handed on (the common case) it has no work.
        if self.links.is_empty() && self.forwards.is_empty() {
            return logs;
        }
        let gone: Vec<(EndpointId, String, String)> = (self.links.iter())
            .filter(|(_, l)| table.is_none_or(|t| t.peer(&l.peer).is_none()))
            .map(|(a, l)| (l.endpoint, l.peer.clone(), a.clone()))
            .collect();
        for (link, peer, address) in gone {
            let why = format!("spillover: peer {peer} ({address}) left the cluster");
            if self.drop_link(out, link, BAD_GATEWAY, &why) > 0 {
                logs.push(why);
            }
        }
        if let Some(table) = table {
            for (link, why) in self.restarted(now, table, interval) {
                if self.drop_link(out, link, BAD_GATEWAY, &why) > 0 {
                    logs.push(why);
                }
            }
        }
        let late: Vec<(Instant, EndpointId, u64)> = (self.give_ups.iter())
            .take_while(|(at, _, _)| *at <= now)
            .copied()
            .collect();
        for entry @ (_, link, sid) in late {
            // `end` takes the entry out too; taking it here as well means one that outlived
            // its forward could never come round again.
            self.give_ups.remove(&entry);
            if !self.forwards.contains_key(&(link, sid)) {
                continue;
            }
            out.push_back(Output::Send {
                endpoint: link,
                frames: vec![native::encode_cancel(sid)],
            });
            let why = "deadline passed; the peer the request was handed to did not answer";
            self.fail(out, link, sid, DEADLINE, why);
        }
        let silent: Vec<(EndpointId, String)> = (self.links.iter())
            .filter(|(_, l)| {
                l.ping
                    .is_some_and(|(_, sent)| sent + interval * PING_MISSES <= now)
            })
            .map(|(a, l)| (l.endpoint, format!("{} ({a})", l.peer)))
            .collect();
        for (link, peer) in silent {
            let why = format!(
                "spillover: peer {peer} did not answer pings for {} ms",
                (interval * PING_MISSES).as_millis()
            );
            self.drop_link(out, link, BAD_GATEWAY, &why);
            logs.push(why);
        }
        for l in self.links.values_mut() {
            if l.open > 0 && l.next_ping.is_none() {
                // The first ping an interval after the link got busy.
                l.next_ping = Some(now + interval);
            }
            let due = l.open > 0 && l.ping.is_none() && l.next_ping.is_some_and(|t| t <= now);
            if due {
                self.next_token += 1;
                l.ping = Some((self.next_token, now));
                l.next_ping = Some(now + interval);
                out.push_back(Output::Send {
                    endpoint: l.endpoint,
                    frames: vec![native::encode_ping(self.next_token)],
                });
            }
        }
        logs
    }

    /// Links whose peer restarted since it was last heard (what it ran for this node is
    /// lost), with why; the others remember the peer's `seq`.
    fn restarted(
        &mut self,
        now: Instant,
        table: &PeerTable,
        interval: Duration,
    ) -> Vec<(EndpointId, String)> {
        let mut restarted = Vec::new();
        for (address, l) in self.links.iter_mut() {
            let Some(peer) = table.peer(&l.peer) else {
                continue;
            };
            let Some((seq, at)) = l.heard else {
                l.heard = Some((peer.seq, now));
                continue;
            };
            if peer.seq == seq {
                continue;
            }
            let intervals =
                now.saturating_duration_since(at).as_millis() / interval.as_millis().max(1) + 1;
            let allowed =
                RESTART_JUMP.saturating_add(SEQ_PER_INTERVAL.saturating_mul(intervals as u64));
            if peer.seq.saturating_sub(seq) > allowed {
                let why = format!(
                    "spillover: peer {} ({address}) restarted; what it ran for this node is lost",
                    l.peer
                );
                restarted.push((l.endpoint, why));
            } else {
                l.heard = Some((peer.seq, now));
            }
        }
        restarted
    }

    /// A caller's endpoint closed: its forwarded requests are cancelled at the peer, with no
    /// reply to send.
    pub fn caller_unbound(&mut self, out: &mut VecDeque<Output>, endpoint: EndpointId) {
        let keys: Vec<(EndpointId, u64)> = (self.forwards.iter())
            .filter(|(_, f)| f.caller.endpoint == endpoint)
            .map(|(k, _)| *k)
            .collect();
        for (link, sid) in keys {
            out.push_back(Output::Send {
                endpoint: link,
                frames: vec![native::encode_cancel(sid)],
            });
            self.end(link, sid);
        }
    }
}

fn send_to_caller(out: &mut VecDeque<Output>, caller: &Caller, message: Bytes) {
    let mut frames = vec![caller.identity.clone()];
    if caller.delimiter {
        frames.push(Bytes::new());
    }
    frames.push(message);
    out.push_back(Output::Send {
        endpoint: caller.endpoint,
        frames,
    });
}

impl super::Node {
    fn spill_interval(&self) -> Duration {
        (self.membership.as_ref()).map_or(
            super::DEFAULT_ANNOUNCE_INTERVAL,
            super::cluster::Membership::interval,
        )
    }

    pub(super) fn spill_poll_timeout(&self) -> Option<Instant> {
        self.shared.spill.poll_timeout(self.spill_interval())
    }

    pub(super) fn spill_timers(&mut self, now: crate::time::Now) {
        let interval = self.spill_interval();
        let table = self
            .membership
            .as_ref()
            .map(super::cluster::Membership::table);
        let logs = (self.shared.spill).timers(now.mono, &mut self.out, table, interval);
        for line in logs {
            self.log(crate::process::LogLevel::Warn, line);
        }
    }

    pub(super) fn spill_received(&mut self, link: EndpointId, frames: Vec<Bytes>) {
        let problems = self.shared.spill.received(&mut self.out, link, frames);
        if let Some(first) = problems.first() {
            self.log(
                crate::process::LogLevel::Debug,
                format!("spillover: {first}"),
            );
        }
    }

    pub(super) fn spill_bound(&mut self, link: EndpointId, result: Result<(), BindError>) {
        if let Some(why) = self.shared.spill.bound(&mut self.out, link, result) {
            self.log(crate::process::LogLevel::Warn, why);
        }
    }

    /// What `info` says about spillover: counters by app, requests handed on and open links.
    pub(super) fn spill_info(&self) -> Value {
        self.shared.spill.info()
    }

    /// What `info APP` says: the app's counters.
    pub(super) fn app_spill_info(&self, app: &str) -> Value {
        json!(self.shared.spill.stats(app))
    }
}
