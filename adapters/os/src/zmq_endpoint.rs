//! One ZeroMQ socket per endpoint the core asks for, set up the way our protocols need, and
//! non-blocking send and receive that never lose a reply silently.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use bytes::Bytes;
use cocaine_core::node::SocketKind;

use crate::endpoint::{self, EndpointError};

/// Messages one endpoint may hold back while its peers are slow; past this, replies are
/// dropped with a log line rather than growing without bound.
pub const OUTBOX_LIMIT: usize = 100_000;
/// ZeroMQ's queue per peer before a send would block.
const HIGH_WATER_MARK: i32 = 10_000;
/// How long a closing socket may still try to deliver what it holds.
const LINGER_MS: i32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ZmqEndpointError {
    #[error(transparent)]
    Address(#[from] EndpointError),
    /// The core names the endpoint in its own report, so the address is kept as data only.
    #[error("{error}")]
    Zmq { address: String, error: zmq::Error },
    /// A plain TCP listener is not a ZeroMQ socket (see `tcp.rs`).
    #[error("a plain TCP listener is not a ZeroMQ socket")]
    NotZeromq,
}

/// What became of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Handed to ZeroMQ.
    Done,
    /// Held back: the peer's queue is full; retried when the socket can send.
    Queued,
    /// The peer is gone (a ROUTER's unknown identity): nobody to deliver to.
    Unroutable,
    /// The outbox is full too; the message is lost (and the caller logs it).
    Dropped,
}

pub struct ZmqEndpoint {
    socket: zmq::Socket,
    kind: SocketKind,
    address: String,
    outbox: VecDeque<Vec<Bytes>>,
}

impl std::fmt::Debug for ZmqEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqEndpoint")
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("outbox", &self.outbox.len())
            .finish()
    }
}

impl ZmqEndpoint {
    /// Binds (or, for a subscriber or a dealer, connects) a socket of `kind` at `address`.
    pub fn open(
        context: &zmq::Context,
        kind: SocketKind,
        address: &str,
        subscribe: &[Bytes],
        max_frame: Option<usize>,
    ) -> Result<Self, ZmqEndpointError> {
        let resolved = endpoint::resolve(address)?;
        let zmq_err = |error| ZmqEndpointError::Zmq {
            address: address.to_owned(),
            error,
        };
        let socket_type = match kind {
            SocketKind::Router => zmq::ROUTER,
            SocketKind::Pull => zmq::PULL,
            SocketKind::Sub => zmq::SUB,
            SocketKind::Pub => zmq::PUB,
            SocketKind::Dealer => zmq::DEALER,
            SocketKind::Tcp => return Err(ZmqEndpointError::NotZeromq),
        };
        let socket = context.socket(socket_type).map_err(zmq_err)?;
        socket.set_linger(LINGER_MS).map_err(zmq_err)?;
        socket.set_sndhwm(HIGH_WATER_MARK).map_err(zmq_err)?;
        socket.set_rcvhwm(HIGH_WATER_MARK).map_err(zmq_err)?;
        if let Some(max_frame) = max_frame {
            set_max_frame(&socket, max_frame).map_err(zmq_err)?;
        }
        match kind {
            SocketKind::Router => {
                // Without this a ROUTER drops replies to unknown or full peers silently.
                socket.set_router_mandatory(true).map_err(zmq_err)?;
                socket.bind(&resolved).map_err(zmq_err)?;
            }
            SocketKind::Pull | SocketKind::Pub | SocketKind::Tcp => {
                socket.bind(&resolved).map_err(zmq_err)?
            }
            SocketKind::Sub => {
                for prefix in subscribe {
                    socket.set_subscribe(prefix).map_err(zmq_err)?;
                }
                socket.connect(&resolved).map_err(zmq_err)?;
            }
            SocketKind::Dealer => socket.connect(&resolved).map_err(zmq_err)?,
        }
        let address = socket
            .get_last_endpoint()
            .ok()
            .and_then(Result::ok)
            .unwrap_or(resolved);
        Ok(Self {
            socket,
            kind,
            address,
            outbox: VecDeque::new(),
        })
    }

    /// Frames over `max_frame` cut their peer off from now on; libzmq applies it to
    /// connections made after this, those made before keep the limit they had.
    pub fn set_max_frame(&self, max_frame: usize) {
        // Only an invalid value fails, and every usize maps to a valid one.
        let _ = set_max_frame(&self.socket, max_frame);
    }

    /// The address actually bound (a `*` port resolved).
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// The descriptor to poll. It signals "something changed", edge-triggered: after each
    /// wake-up and each send or receive, call [`ZmqEndpoint::readable`] and keep going.
    pub fn fd(&self) -> Result<RawFd, zmq::Error> {
        self.socket.get_fd()
    }

    /// What to do after the descriptor fired or a send: retries held-back sends, then takes
    /// up to `max` waiting messages into `out`. Returns true if more may wait (the batch
    /// filled). Otherwise libzmq has processed every command it had for this socket (a
    /// receive ending in `EAGAIN` does that), so anything new will signal the descriptor.
    pub fn drain(&mut self, max: usize, out: &mut Vec<Vec<Bytes>>) -> bool {
        if self.has_backlog() {
            self.flush();
        }
        if self.kind == SocketKind::Pub {
            // Nothing to receive; reading the events processes the commands (new
            // subscribers, a peer's queue draining).
            let _ = self.socket.get_events();
            return false;
        }
        // An error other than EAGAIN (none is expected on our socket types) ends the batch;
        // whatever came before it is kept.
        matches!(self.recv_some(max, out), Ok(n) if n == max)
    }

    /// Receives up to `max` waiting messages (a bound keeps one busy socket from starving
    /// the others).
    fn recv_some(&self, max: usize, out: &mut Vec<Vec<Bytes>>) -> Result<usize, zmq::Error> {
        let mut n = 0;
        while n < max {
            match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => {
                    out.push(frames.into_iter().map(Bytes::from).collect());
                    n += 1;
                }
                Err(zmq::Error::EAGAIN) => break,
                Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Sends a multipart message without blocking; see [`Sent`].
    pub fn send(&mut self, frames: Vec<Bytes>) -> Sent {
        if !self.outbox.is_empty() {
            return self.hold(frames);
        }
        match self.try_send(&frames) {
            Ok(()) => Sent::Done,
            Err(zmq::Error::EAGAIN) => self.hold(frames),
            Err(_) => Sent::Unroutable,
        }
    }

    fn hold(&mut self, frames: Vec<Bytes>) -> Sent {
        if self.outbox.len() >= OUTBOX_LIMIT {
            return Sent::Dropped;
        }
        self.outbox.push_back(frames);
        Sent::Queued
    }

    /// Retries held-back messages while the socket can send; returns how many went out.
    pub fn flush(&mut self) -> usize {
        let mut sent = 0;
        while let Some(frames) = self.outbox.front() {
            match self.try_send(frames) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN) => break,
                // Gone meanwhile: nothing to deliver to.
                Err(_) => {}
            }
            self.outbox.pop_front();
            sent += 1;
        }
        sent
    }

    pub fn has_backlog(&self) -> bool {
        !self.outbox.is_empty()
    }

    fn try_send(&self, frames: &[Bytes]) -> Result<(), zmq::Error> {
        let last = frames.len().saturating_sub(1);
        for (i, frame) in frames.iter().enumerate() {
            let flags = zmq::DONTWAIT | if i < last { zmq::SNDMORE } else { 0 };
            // Only the first frame can fail with EAGAIN or EHOSTUNREACH: once a message is
            // accepted, ZeroMQ takes all of its parts.
            self.socket.send(&frame[..], flags)?;
        }
        Ok(())
    }
}

/// `ZMQ_MAXMSGSIZE`: libzmq drops a peer from the header of a longer frame, before reading
/// it.
fn set_max_frame(socket: &zmq::Socket, max_frame: usize) -> zmq::Result<()> {
    socket.set_maxmsgsize(i64::try_from(max_frame).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_answers_a_dealer_and_reports_unknown_peers() {
        let ctx = zmq::Context::new();
        let mut router =
            ZmqEndpoint::open(&ctx, SocketKind::Router, "tcp://127.0.0.1:*", &[], None).unwrap();
        let dealer = ctx.socket(zmq::DEALER).unwrap();
        dealer.connect(router.address()).unwrap();
        dealer.send_multipart([&b"hello"[..]], 0).unwrap();
        let mut got = Vec::new();
        // Wait on the socket itself, not on a sleep.
        let mut items = [router.socket.as_poll_item(zmq::POLLIN)];
        zmq::poll(&mut items, 5000).unwrap();
        router.recv_some(10, &mut got).unwrap();
        assert_eq!(got.len(), 1);
        let identity = got[0][0].clone();
        assert_eq!(&got[0][1][..], b"hello");
        assert_eq!(
            router.send(vec![identity, Bytes::from_static(b"world")]),
            Sent::Done
        );
        assert_eq!(dealer.recv_bytes(0).unwrap(), b"world");
        assert_eq!(
            router.send(vec![Bytes::from_static(b"nobody"), Bytes::new()]),
            Sent::Unroutable
        );
    }

    #[test]
    fn interface_names_bind() {
        let ctx = zmq::Context::new();
        let pubsub = ZmqEndpoint::open(&ctx, SocketKind::Pub, "tcp://lo:*", &[], None).unwrap();
        assert!(
            pubsub.address().starts_with("tcp://127.0.0.1:"),
            "{}",
            pubsub.address()
        );
    }

    #[test]
    fn a_port_in_use_names_the_endpoint() {
        let ctx = zmq::Context::new();
        let first =
            ZmqEndpoint::open(&ctx, SocketKind::Router, "tcp://127.0.0.1:*", &[], None).unwrap();
        let taken = first.address().to_owned();
        let err = ZmqEndpoint::open(&ctx, SocketKind::Router, &taken, &[], None).unwrap_err();
        assert!(
            matches!(&err, ZmqEndpointError::Zmq { address, error: zmq::Error::EADDRINUSE } if *address == taken),
            "{err}"
        );
    }
}
