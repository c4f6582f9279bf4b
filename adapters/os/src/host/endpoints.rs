//! The host's ZeroMQ endpoints, and which of them to drain before the loop may sleep.
//!
//! `ZMQ_FD` is edge-triggered and says only "libzmq has commands for this socket". Any call
//! on the socket (a receive, a send, reading `ZMQ_EVENTS`) may process those commands and
//! so take the edge, leaving messages behind that no new edge will announce. Each such call
//! costs a system call too (libzmq polls its command mailbox), so the host does not check
//! every endpoint on every pass: it drains an endpoint (held-back sends, then receives until
//! libzmq says `EAGAIN`, which leaves the mailbox empty and the next command sure to signal)
//! exactly when it may hold something unseen: its descriptor fired, the host sent on it, or
//! the last drain stopped at [`RECV_BATCH`].
//!
//! ROUTER endpoints at `tcp://` and `ipc://` addresses are served by the node itself
//! ([`ZmtpEndpoint`]) unless `COCAINE_ZMTP=libzmq` is set: their descriptors are plain
//! sockets, read when ready and written at the end of each pass like raw TCP connections.

use std::collections::VecDeque;

use bytes::Bytes;
use cocaine_core::ids::IdMap;
use cocaine_core::node::{BindError, Input, SocketKind};
use cocaine_core::EndpointId;

use cocaine_core::process::LogLevel;

use super::runtime::{Ready, Runtime, Source};
use crate::boundary::bind_io;
use crate::zmq_endpoint::{Sent, ZmqEndpoint};
use crate::zmtp_endpoint::{self, Limits, ZmtpEndpoint};

/// The environment variable that hands ROUTER endpoints back to libzmq (`libzmq`).
pub const ZMTP_SWITCH: &str = "COCAINE_ZMTP";
/// The most one read from a ZMTP connection takes.
const READ_CHUNK: usize = 64 * 1024;

/// Messages taken from one endpoint per pass, so one busy client cannot starve the rest.
pub const RECV_BATCH: usize = 256;

pub(super) struct Endpoints {
    context: zmq::Context,
    table: IdMap<EndpointId, ZmqEndpoint>,
    /// Endpoints to drain before sleeping (may repeat; deduplicated when drained).
    dirty: Vec<EndpointId>,
    /// Kept between passes for its allocation.
    received: Vec<Vec<Bytes>>,
    /// ROUTER endpoints the node serves itself.
    zmtp: IdMap<EndpointId, ZmtpEndpoint>,
    /// Whether new ROUTER endpoints are served by the node (false: by libzmq).
    own_router: bool,
    scratch: Box<[u8]>,
}

impl Endpoints {
    pub fn new() -> Self {
        Self {
            context: zmq::Context::new(),
            table: IdMap::default(),
            dirty: Vec::new(),
            received: Vec::new(),
            zmtp: IdMap::default(),
            own_router: std::env::var(ZMTP_SWITCH).map_or(true, |v| v != "libzmq"),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// Opens a socket of `kind` at `address` for `id` and watches its `ZMQ_FD`. A ROUTER
    /// cuts off peers by `max_message`, its task's (see [`Limits::for_task`]).
    pub fn open(
        &mut self,
        id: EndpointId,
        kind: SocketKind,
        address: &str,
        subscribe: &[Bytes],
        max_message: Option<usize>,
        runtime: &mut impl Runtime,
    ) -> Result<(), BindError> {
        let limits = Limits::for_task(max_message);
        if kind == SocketKind::Router && self.own_router && zmtp_endpoint::serves(address) {
            let endpoint = ZmtpEndpoint::open(id, address, limits, runtime)?;
            self.zmtp.insert(id, endpoint);
            return Ok(());
        }
        // libzmq bounds frames only (`ZMQ_MAXMSGSIZE`); left unbounded without a task limit.
        let max_frame = max_message.map(|_| limits.frame);
        let endpoint = ZmqEndpoint::open(&self.context, kind, address, subscribe, max_frame)
            .map_err(BindError::from)?;
        let fd = endpoint.fd().map_err(|e| BindError::Other(e.to_string()))?;
        runtime
            .watch(Source::Endpoint(id), fd)
            .map_err(|e| bind_io(&e, e.to_string()))?;
        self.table.insert(id, endpoint);
        // Connected peers may have sent already, before the descriptor was watched.
        self.dirty.push(id);
        Ok(())
    }

    /// Closes `id`; false if it is not one of these endpoints.
    pub fn close(&mut self, id: EndpointId, runtime: &mut impl Runtime) -> bool {
        if let Some(endpoint) = self.zmtp.remove(&id) {
            endpoint.close(runtime);
            return true;
        }
        if !self.table.contains_key(&id) {
            return false;
        }
        runtime.unwatch(Source::Endpoint(id));
        self.table.remove(&id);
        true
    }

    /// The task behind `id` now has `max_message` (a new version took the endpoint over).
    pub fn set_max_message(&mut self, id: EndpointId, max_message: Option<usize>) {
        let limits = Limits::for_task(max_message);
        if let Some(endpoint) = self.zmtp.get_mut(&id) {
            endpoint.set_limits(limits);
        } else if let (Some(endpoint), Some(_)) = (self.table.get(&id), max_message) {
            endpoint.set_max_frame(limits.frame);
        }
    }

    /// The runtime reported `id`'s descriptor.
    pub fn fired(&mut self, id: EndpointId) {
        if self.table.contains_key(&id) {
            self.dirty.push(id);
        }
    }

    /// Sends on `id` (see [`ZmqEndpoint::send`]); what became of it, with the endpoint's
    /// address for a log line. None if `id` is gone.
    pub fn send(&mut self, id: EndpointId, frames: Vec<Bytes>) -> Option<(Sent, &str)> {
        if let Some(endpoint) = self.zmtp.get_mut(&id) {
            let sent = endpoint.send(&frames);
            return Some((sent, endpoint.address()));
        }
        let endpoint = self.table.get_mut(&id)?;
        let sent = endpoint.send(frames);
        // The send may have processed libzmq's commands, and with them the descriptor's edge.
        self.dirty.push(id);
        Some((sent, endpoint.address()))
    }

    /// A ZMTP endpoint's listener is ready: take its peers.
    pub fn accept(
        &mut self,
        id: EndpointId,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        if let Some(endpoint) = self.zmtp.get_mut(&id) {
            endpoint.accept(runtime, &mut self.scratch, inputs);
        }
    }

    /// One of a ZMTP endpoint's connections is ready.
    pub fn ready(
        &mut self,
        id: EndpointId,
        conn: u32,
        ready: Ready,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        if let Some(endpoint) = self.zmtp.get_mut(&id) {
            endpoint.ready(conn, ready, runtime, &mut self.scratch, inputs);
        }
    }

    /// Writes what this pass queued on ZMTP connections; returns log lines about the
    /// connections dropped.
    pub fn flush(&mut self, runtime: &mut impl Runtime, notes: &mut Vec<(LogLevel, String)>) {
        for endpoint in self.zmtp.values_mut() {
            endpoint.flush(runtime);
            endpoint.take_notes(notes);
        }
    }

    /// Drains every endpoint that may hold something unseen, queueing what it received as
    /// inputs. Returns true if one still has messages (the next wait must not sleep).
    pub fn drain(&mut self, inputs: &mut VecDeque<Input>) -> bool {
        if self.dirty.is_empty() {
            return false;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for id in dirty.drain(..) {
            let Some(endpoint) = self.table.get_mut(&id) else {
                continue;
            };
            if endpoint.drain(RECV_BATCH, &mut self.received) {
                self.dirty.push(id);
            }
            for frames in self.received.drain(..) {
                inputs.push_back(Input::Received {
                    endpoint: id,
                    frames,
                });
            }
        }
        let more = !self.dirty.is_empty();
        // Keep the allocation: swap the (empty) taken vector back if nothing was re-added.
        if !more {
            self.dirty = dirty;
        }
        more
    }
}
