//! A ROUTER endpoint that speaks ZMTP itself ([`cocaine_core::zmtp`]) on the node's own loop:
//! the listener and every connection are descriptors the runtime watches, so a request and
//! its reply cross no other thread (libzmq's ROUTER hands each message to and from its I/O
//! thread).
//!
//! It looks to the host like a [`crate::zmq_endpoint::ZmqEndpoint`] ROUTER: messages come in
//! with a routing frame first, and a send is routed by its first frame. Routing frames are
//! made as libzmq makes them (5 bytes: 0, then a 32-bit counter), here from 1 for each
//! endpoint; after the counter wraps, ids still in use are skipped, so no two open
//! connections ever share an id and a reply never reaches a peer it was not meant for. A
//! peer's `Identity`/`Routing-Id` property is not used for routing: a peer that reconnects
//! gets a new id, like a peer of a libzmq ROUTER that sets none, and no peer can take
//! another's.
//!
//! Replies of one pass are encoded into the connection's buffer and written together at the
//! end of the pass; a connection whose peer does not read holds at most [`WRITE_LIMIT`]
//! bytes, past which replies to it are dropped (as a libzmq ROUTER drops at its high-water
//! mark). A connection that breaks the protocol or sends a frame or message over the
//! endpoint's [`Limits`] is dropped with a log line; the endpoint and its other connections
//! go on.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use bytes::Bytes;
use cocaine_core::node::{BindError, Input};
use cocaine_core::process::LogLevel;
use cocaine_core::zmtp::Connection;
use cocaine_core::EndpointId;

use crate::boundary::bind_io;
use crate::host::{Ready, Runtime, Source};
use crate::tcp;
use crate::zmq_endpoint::Sent;

/// Bytes one connection may hold for a peer that does not read; past this its replies are
/// dropped.
pub const WRITE_LIMIT: usize = 64 << 20;
/// How far over its task's `max-message` a frame may be and still be read: so far, the task
/// gets it and answers with its error (413), which tells a client more than a closed
/// connection; past it, the peer is cut off from the frame's header, before any of it is
/// kept, as a libzmq ROUTER with `ZMQ_MAXMSGSIZE` does.
pub const OVER_LIMIT: usize = 1 << 20;

/// The largest message (frames and their headers) a peer may send unless a task's own limit
/// is larger: the default `max-message` (64 MiB) and [`OVER_LIMIT`]. It bounds what a peer
/// makes the node buffer with many frames each within the frame limit.
pub const MAX_MESSAGE: usize = (64 << 20) + OVER_LIMIT;

/// What one peer may send before it is cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One frame's body.
    pub frame: usize,
    /// One multipart message, headers included.
    pub message: usize,
}

impl Limits {
    /// For an endpoint whose task takes messages up to `max_message` bytes (None: a ROUTER
    /// with no task limit, bounded by [`MAX_MESSAGE`] alone).
    pub fn for_task(max_message: Option<usize>) -> Limits {
        let frame = max_message.map_or(MAX_MESSAGE, |m| m.saturating_add(OVER_LIMIT));
        Limits {
            frame,
            message: frame.max(MAX_MESSAGE),
        }
    }
}

/// Connections that have not finished their handshake, at most, per endpoint: past this the
/// oldest of them is dropped. libzmq drops a peer that never greets after a timeout; a cap
/// bounds the same descriptors (a client that connects and says nothing, many times) without
/// a clock, as a listen backlog does, and costs well-behaved peers nothing: their handshake
/// is one round trip.
pub const MAX_HANDSHAKING: usize = 256;

/// Whether `address` is one this endpoint serves (others stay with libzmq): `tcp://`, and
/// `ipc://` with a path (not an abstract `@name`).
pub fn serves(address: &str) -> bool {
    address.starts_with("tcp://")
        || address
            .strip_prefix("ipc://")
            .is_some_and(|path| !path.is_empty() && !path.starts_with('@'))
}

enum Listener {
    Tcp(TcpListener),
    /// With the socket file, removed on close.
    Unix(UnixListener, PathBuf),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
}

struct Peer {
    stream: Stream,
    zmtp: Connection,
    routing: Bytes,
}

/// One ROUTER endpoint served by the node itself.
pub struct ZmtpEndpoint {
    id: EndpointId,
    listener: Listener,
    address: String,
    conns: HashMap<u32, Peer>,
    next: u32,
    limits: Limits,
    /// Connections with bytes to write this pass (may repeat).
    unflushed: Vec<u32>,
    /// Connections in accept order that may still be in their handshake (those that finished
    /// or left are pruned lazily), to drop the oldest past [`MAX_HANDSHAKING`].
    handshaking: VecDeque<u32>,
    notes: Vec<(LogLevel, String)>,
}

impl std::fmt::Debug for ZmtpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmtpEndpoint")
            .field("address", &self.address)
            .field("conns", &self.conns.len())
            .finish()
    }
}

fn routing_id(n: u32) -> Bytes {
    let mut id = [0u8; 5];
    id[1..].copy_from_slice(&n.to_be_bytes());
    Bytes::copy_from_slice(&id)
}

impl ZmtpEndpoint {
    /// Listens at `address` (see [`serves`]) for `id` and watches the listener.
    pub fn open(
        id: EndpointId,
        address: &str,
        limits: Limits,
        runtime: &mut impl Runtime,
    ) -> Result<Self, BindError> {
        let (listener, bound, fd) = if let Some(path) = address.strip_prefix("ipc://") {
            // As libzmq does: a file left by an earlier run is replaced.
            let _ = std::fs::remove_file(path);
            let listener =
                UnixListener::bind(path).map_err(|e| bind_io(&e, format!("{address}: {e}")))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| bind_io(&e, e.to_string()))?;
            let fd = listener.as_raw_fd();
            (
                Listener::Unix(listener, PathBuf::from(path)),
                address.to_owned(),
                fd,
            )
        } else {
            let listener = tcp::listen(address).map_err(BindError::from)?;
            let bound = listener
                .local_addr()
                .map_or_else(|_| address.to_owned(), |a| format!("tcp://{a}"));
            let fd = listener.as_raw_fd();
            (Listener::Tcp(listener), bound, fd)
        };
        runtime
            .watch(Source::ZmtpListener(id), fd)
            .map_err(|e| bind_io(&e, e.to_string()))?;
        Ok(Self {
            id,
            listener,
            address: bound,
            conns: HashMap::new(),
            next: 1,
            limits,
            unflushed: Vec::new(),
            handshaking: VecDeque::new(),
            notes: Vec::new(),
        })
    }

    /// The address bound (a `*` port resolved).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// New limits (a new version of the task took the endpoint over), for every connection
    /// from its next frame on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        for peer in self.conns.values_mut() {
            peer.zmtp.set_limits(limits.frame, limits.message);
        }
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Stops listening and drops every connection, after one try at writing what each
    /// holds: a reply sent in the pass that closes the endpoint (control's `quit`) still
    /// reaches its peer, as libzmq's linger would have it.
    pub fn close(mut self, runtime: &mut impl Runtime) {
        let conns: Vec<u32> = self.conns.keys().copied().collect();
        for conn in conns {
            self.flush_one(conn, runtime);
            self.drop_conn(conn, runtime);
        }
        runtime.unwatch(Source::ZmtpListener(self.id));
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Log lines about connections dropped since the last call.
    pub fn take_notes(&mut self, out: &mut Vec<(LogLevel, String)>) {
        out.append(&mut self.notes);
    }

    /// Takes every waiting peer.
    pub fn accept(
        &mut self,
        runtime: &mut impl Runtime,
        scratch: &mut [u8],
        inputs: &mut VecDeque<Input>,
    ) {
        loop {
            let accepted = match &self.listener {
                Listener::Tcp(l) => l.accept().map(|(s, _)| {
                    // Replies are small and must not wait for Nagle.
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: all taken; anything else ends this round, the next readiness
                // retries.
                Err(_) => return,
            };
            let nonblocking = match &stream {
                Stream::Tcp(s) => s.set_nonblocking(true),
                Stream::Unix(s) => s.set_nonblocking(true),
            };
            if nonblocking.is_err() {
                continue;
            }
            let n = self.new_routing_id();
            if runtime
                .watch(Source::ZmtpConn(self.id, n), stream.fd())
                .is_err()
            {
                continue;
            }
            self.conns.insert(
                n,
                Peer {
                    stream,
                    zmtp: Connection::new(self.limits.message).with_max_frame(self.limits.frame),
                    routing: routing_id(n),
                },
            );
            self.handshaking.push_back(n);
            self.bound_handshakes(runtime);
            // Our greeting and READY go out with this pass's writes.
            self.unflushed.push(n);
            // The peer may have written already: the edge may have come before the watch.
            self.read(n, false, runtime, scratch, inputs);
        }
    }

    /// Connection `conn` is ready.
    pub fn ready(
        &mut self,
        conn: u32,
        ready: Ready,
        runtime: &mut impl Runtime,
        scratch: &mut [u8],
        inputs: &mut VecDeque<Input>,
    ) {
        if ready.readable || ready.hangup {
            self.read(conn, ready.hangup, runtime, scratch, inputs);
        }
        if ready.writable {
            self.flush_one(conn, runtime);
        }
    }

    /// Reads until a short read (the kernel's buffer was empty) or the end (`to_end`: the
    /// peer hung up, and an end that came with the last bytes shows only to one more read).
    fn read(
        &mut self,
        conn: u32,
        to_end: bool,
        runtime: &mut impl Runtime,
        scratch: &mut [u8],
        inputs: &mut VecDeque<Input>,
    ) {
        loop {
            let Some(peer) = self.conns.get_mut(&conn) else {
                return;
            };
            let n = match peer.stream.read(scratch) {
                Ok(0) => {
                    if let Err(error) = peer.zmtp.finish() {
                        let message = format!("{}: a peer left: {error}", self.address);
                        self.notes.push((LogLevel::Debug, message));
                    }
                    self.drop_conn(conn, runtime);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let message = format!("{}: a peer's connection failed: {e}", self.address);
                    self.notes.push((LogLevel::Debug, message));
                    self.drop_conn(conn, runtime);
                    return;
                }
            };
            peer.zmtp.push(&scratch[..n]);
            loop {
                match peer.zmtp.poll() {
                    Ok(Some(mut frames)) => {
                        frames.insert(0, peer.routing.clone());
                        inputs.push_back(Input::Received {
                            endpoint: self.id,
                            frames,
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let message = format!("{}: dropped a connection: {error}", self.address);
                        self.notes.push((LogLevel::Warn, message));
                        // Tell the peer why if its socket takes it now; no waiting for it.
                        let pending = peer.zmtp.pending().len();
                        if pending > 0 {
                            let _ = peer.stream.write(peer.zmtp.pending());
                        }
                        self.drop_conn(conn, runtime);
                        return;
                    }
                }
            }
            if !peer.zmtp.pending().is_empty() {
                // A PONG (or the handshake) to write.
                self.unflushed.push(conn);
            }
            if n < scratch.len() && !to_end {
                return;
            }
        }
    }

    /// Routes a message by its first frame; see [`Sent`].
    pub fn send(&mut self, frames: &[Bytes]) -> Sent {
        let Some((routing, message)) = frames.split_first() else {
            return Sent::Unroutable;
        };
        let conn = match routing[..] {
            [0, a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
            _ => return Sent::Unroutable,
        };
        let Some(peer) = self.conns.get_mut(&conn) else {
            return Sent::Unroutable;
        };
        let backlog = peer.zmtp.pending().len();
        if backlog > WRITE_LIMIT {
            return Sent::Dropped;
        }
        if !message.is_empty() {
            peer.zmtp.send(message);
            self.unflushed.push(conn);
        }
        if backlog > 0 {
            Sent::Queued
        } else {
            Sent::Done
        }
    }

    /// Writes what this pass queued: one write per connection when the socket takes it all.
    pub fn flush(&mut self, runtime: &mut impl Runtime) {
        if self.unflushed.is_empty() {
            return;
        }
        let mut conns = std::mem::take(&mut self.unflushed);
        conns.sort_unstable();
        conns.dedup();
        for conn in conns.drain(..) {
            self.flush_one(conn, runtime);
        }
        self.unflushed = conns;
    }

    fn flush_one(&mut self, conn: u32, runtime: &mut impl Runtime) {
        let Some(peer) = self.conns.get_mut(&conn) else {
            return;
        };
        while !peer.zmtp.pending().is_empty() {
            match peer.stream.write(peer.zmtp.pending()) {
                Ok(0) => {
                    self.drop_conn(conn, runtime);
                    return;
                }
                Ok(n) => peer.zmtp.written(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The peer is gone: what it was owed is lost, as with libzmq.
                    self.drop_conn(conn, runtime);
                    return;
                }
            }
        }
        let waiting = !peer.zmtp.pending().is_empty();
        runtime.want_write(Source::ZmtpConn(self.id, conn), waiting);
    }

    /// The next routing id no open connection has: after the counter wraps (2^32 - 1
    /// connections) it skips the ids still in use, so a reply is never routed to a newer
    /// peer that happens to share an older one's id. There are far fewer connections than
    /// ids, so the search ends.
    fn new_routing_id(&mut self) -> u32 {
        loop {
            let n = self.next;
            // 0 is never used: the counter runs from 1, as libzmq's does.
            self.next = self.next.wrapping_add(1).max(1);
            if !self.conns.contains_key(&n) {
                return n;
            }
        }
    }

    /// Whether connection `n` is open and has not finished its handshake.
    fn in_handshake(&self, n: u32) -> bool {
        self.conns.get(&n).is_some_and(|p| p.zmtp.peer().is_none())
    }

    /// Drops the oldest connections still in their handshake while there are more than
    /// [`MAX_HANDSHAKING`].
    fn bound_handshakes(&mut self, runtime: &mut impl Runtime) {
        if self.handshaking.len() > 2 * MAX_HANDSHAKING {
            let handshaking = std::mem::take(&mut self.handshaking);
            self.handshaking = handshaking
                .into_iter()
                .filter(|&n| self.in_handshake(n))
                .collect();
        }
        let mut waiting = self
            .handshaking
            .iter()
            .filter(|&&n| self.in_handshake(n))
            .count();
        while waiting > MAX_HANDSHAKING {
            let Some(oldest) = self.handshaking.pop_front() else {
                break;
            };
            if self.in_handshake(oldest) {
                self.drop_conn(oldest, runtime);
                waiting -= 1;
            }
        }
        if waiting == 0 {
            self.handshaking.clear();
        }
    }

    fn drop_conn(&mut self, conn: u32, runtime: &mut impl Runtime) {
        if self.conns.contains_key(&conn) {
            // Unwatched while the descriptor is still open (the `Runtime` contract).
            runtime.unwatch(Source::ZmtpConn(self.id, conn));
            self.conns.remove(&conn);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Real libzmq peers against the endpoint, on the host tests' level-triggered `poll(2)`
    //! runtime.

    use std::time::Instant;

    use super::*;
    use crate::host::tests::Fake;
    use crate::host::Wake;

    struct Rig {
        rt: Fake,
        ep: ZmtpEndpoint,
        scratch: Vec<u8>,
        inputs: VecDeque<Input>,
        notes: Vec<(LogLevel, String)>,
    }

    impl Rig {
        fn new(address: &str, max_message: usize) -> Rig {
            let limits = Limits {
                frame: max_message,
                message: max_message,
            };
            Rig::with_limits(address, limits)
        }

        fn with_limits(address: &str, limits: Limits) -> Rig {
            let mut rt = Fake::new();
            let ep = ZmtpEndpoint::open(EndpointId(1), address, limits, &mut rt).unwrap();
            Rig {
                rt,
                ep,
                scratch: vec![0; 4096],
                inputs: VecDeque::new(),
                notes: Vec::new(),
            }
        }

        /// One loop pass: wait up to 100 ms for readiness, handle it, write.
        fn pass(&mut self) {
            let mut wake = Wake::default();
            self.rt.poll(100, &mut wake);
            for ready in wake.ready {
                match ready.source {
                    Source::ZmtpListener(_) if ready.readable => {
                        self.ep
                            .accept(&mut self.rt, &mut self.scratch, &mut self.inputs)
                    }
                    Source::ZmtpConn(_, n) if ready.readable || ready.writable => {
                        self.ep
                            .ready(n, ready, &mut self.rt, &mut self.scratch, &mut self.inputs)
                    }
                    _ => {}
                }
            }
            self.ep.flush(&mut self.rt);
            self.ep.take_notes(&mut self.notes);
        }

        /// Passes until `n` messages came (or 10 s passed: the test then fails).
        fn receive(&mut self, n: usize) -> Vec<Vec<Bytes>> {
            let start = Instant::now();
            while self.inputs.len() < n && start.elapsed().as_secs() < 10 {
                self.pass();
            }
            assert_eq!(self.inputs.len(), n, "messages received");
            self.inputs
                .drain(..)
                .map(|input| match input {
                    Input::Received { frames, .. } => frames,
                    other => panic!("{other:?}"),
                })
                .collect()
        }

        /// Passes until `done` holds (or 10 s passed: the test then fails).
        fn until(&mut self, what: &str, mut done: impl FnMut(&mut Rig) -> bool) {
            let start = Instant::now();
            while !done(self) {
                assert!(start.elapsed().as_secs() < 10, "waited too long for {what}");
                self.pass();
            }
        }

        /// `n` TCP connections to `addr` that never send a byte, accepted as they come (the
        /// listen backlog is smaller than `n`).
        fn connect_silent(&mut self, addr: &str, n: usize) -> Vec<std::net::TcpStream> {
            (0..n)
                .map(|i| {
                    if i % 16 == 0 {
                        self.pass();
                    }
                    std::net::TcpStream::connect(addr).unwrap()
                })
                .collect()
        }

        /// Passes while a libzmq socket gets what it waits for.
        fn recv(&mut self, socket: &zmq::Socket) -> Vec<Vec<u8>> {
            let start = Instant::now();
            loop {
                match socket.recv_multipart(zmq::DONTWAIT) {
                    Ok(frames) => return frames,
                    Err(zmq::Error::EAGAIN) => {}
                    Err(e) => panic!("{e}"),
                }
                assert!(start.elapsed().as_secs() < 10, "no reply");
                self.pass();
            }
        }
    }

    /// A libzmq socket that does not hold the context's end for unsent messages.
    fn socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
        let s = ctx.socket(kind).unwrap();
        s.set_linger(0).unwrap();
        s
    }

    /// A ZMTP 3.0 greeting and a READY naming the socket type `kind`.
    fn hello(kind: &[u8]) -> Vec<u8> {
        let mut greeting = [0u8; 64];
        greeting[0] = 0xFF;
        greeting[9] = 0x7F;
        greeting[10] = 3;
        greeting[12..16].copy_from_slice(b"NULL");
        let mut hello = bytes::BytesMut::from(&greeting[..]);
        let ready = vec![("Socket-Type".to_owned(), b(kind))];
        cocaine_core::zmtp::encode_command(&cocaine_core::zmtp::Command::Ready(ready), &mut hello);
        hello.to_vec()
    }

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn peers_that_never_greet_are_bounded_and_do_not_crowd_out_others() {
        let ctx = zmq::Context::new();
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1 << 20);
        let addr = rig.ep.address().trim_start_matches("tcp://").to_owned();
        let silent = rig.connect_silent(&addr, MAX_HANDSHAKING + 20);
        rig.until("every silent peer accepted", |r| {
            r.ep.conns.len() == MAX_HANDSHAKING
                && r.ep.handshaking.len() <= 2 * MAX_HANDSHAKING + 1
                && r.ep.next as usize == MAX_HANDSHAKING + 21
        });
        // The oldest were dropped: after our greeting, each of them reads the end.
        let mut first = &silent[0];
        first
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        first.read_to_end(&mut got).unwrap();
        assert!(got.len() >= 64, "our greeting came first: {got:?}");
        // A real peer still gets in and is answered, and stays past more silent ones.
        let dealer = socket(&ctx, zmq::DEALER);
        dealer.connect(rig.ep.address()).unwrap();
        dealer.send_multipart(["", "hello"], 0).unwrap();
        let got = rig.receive(1);
        let more = rig.connect_silent(&addr, MAX_HANDSHAKING);
        rig.until("the second wave accepted", |r| {
            r.ep.next as usize == 2 * MAX_HANDSHAKING + 22
        });
        assert_eq!(
            rig.ep.conns.len(),
            MAX_HANDSHAKING + 1,
            "the handshaken peer stays"
        );
        assert_eq!(
            rig.ep.send(&[got[0][0].clone(), b(b""), b(b"hi")]),
            Sent::Done
        );
        assert_eq!(rig.recv(&dealer), vec![vec![], b"hi".to_vec()]);
        drop((silent, more));
    }

    #[test]
    fn req_and_dealer_peers_get_their_replies() {
        let ctx = zmq::Context::new();
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1 << 20);
        let req = socket(&ctx, zmq::REQ);
        req.connect(rig.ep.address()).unwrap();
        let dealer = socket(&ctx, zmq::DEALER);
        dealer.connect(rig.ep.address()).unwrap();
        req.send("from req", 0).unwrap();
        dealer.send_multipart(["", "from dealer"], 0).unwrap();
        let mut got = rig.receive(2);
        got.sort_by(|a, b| a[2].cmp(&b[2]));
        assert_eq!(&got[0][1..], [b(b""), b(b"from dealer")]);
        assert_eq!(&got[1][1..], [b(b""), b(b"from req")]);
        for m in &got {
            assert_eq!(m[0].len(), 5);
            assert_eq!(m[0][0], 0);
        }
        assert_ne!(got[0][0], got[1][0]);
        for m in &got {
            let reply = vec![m[0].clone(), b(b""), b(&[b'>'; 300])];
            assert_eq!(rig.ep.send(&reply), Sent::Done);
        }
        assert_eq!(rig.recv(&req), vec![vec![b'>'; 300]]);
        assert_eq!(rig.recv(&dealer), vec![vec![], vec![b'>'; 300]]);
        assert_eq!(
            rig.ep.send(&[b(b"\0\0\0\0\x63"), b(b"x")]),
            Sent::Unroutable
        );
        assert_eq!(rig.ep.send(&[b(b"nobody"), b(b"x")]), Sent::Unroutable);
    }

    #[test]
    fn many_connections_are_told_apart() {
        let ctx = zmq::Context::new();
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1 << 20);
        let dealers: Vec<zmq::Socket> = (0..40)
            .map(|i| {
                let d = socket(&ctx, zmq::DEALER);
                d.connect(rig.ep.address()).unwrap();
                d.send(format!("{i}").as_bytes(), 0).unwrap();
                d
            })
            .collect();
        let got = rig.receive(40);
        let ids: std::collections::HashSet<_> = got.iter().map(|m| m[0].clone()).collect();
        assert_eq!(ids.len(), 40);
        for m in &got {
            assert_eq!(rig.ep.send(&[m[0].clone(), m[1].clone()]), Sent::Done);
        }
        for (i, d) in dealers.iter().enumerate() {
            assert_eq!(rig.recv(d), vec![format!("{i}").into_bytes()]);
        }
    }

    #[test]
    fn after_the_counter_wraps_an_id_in_use_is_skipped() {
        let ctx = zmq::Context::new();
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1 << 20);
        let first = socket(&ctx, zmq::DEALER);
        first.connect(rig.ep.address()).unwrap();
        first.send("first", 0).unwrap();
        let got_first = rig.receive(1);
        assert_eq!(got_first[0][0], routing_id(1));
        // 2^32 - 2 connections later: the next peer takes the last id, and the one after it
        // would wrap to 1, which the first peer still holds.
        rig.ep.next = u32::MAX;
        let last = socket(&ctx, zmq::DEALER);
        last.connect(rig.ep.address()).unwrap();
        last.send("last", 0).unwrap();
        let got_last = rig.receive(1);
        assert_eq!(got_last[0][0], routing_id(u32::MAX));
        let wrapped = socket(&ctx, zmq::DEALER);
        wrapped.connect(rig.ep.address()).unwrap();
        wrapped.send("wrapped", 0).unwrap();
        let got_wrapped = rig.receive(1);
        assert_eq!(got_wrapped[0][0], routing_id(2), "id 1 is in use");
        assert_eq!(rig.ep.next, 3);
        // Each reply reaches the peer it was meant for.
        for got in [got_first, got_last, got_wrapped] {
            assert_eq!(rig.ep.send(&got[0]), Sent::Done);
        }
        assert_eq!(rig.recv(&first), vec![b"first".to_vec()]);
        assert_eq!(rig.recv(&last), vec![b"last".to_vec()]);
        assert_eq!(rig.recv(&wrapped), vec![b"wrapped".to_vec()]);
    }

    #[test]
    fn an_oversized_message_drops_only_its_connection() {
        let ctx = zmq::Context::new();
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1000);
        let big = socket(&ctx, zmq::DEALER);
        big.connect(rig.ep.address()).unwrap();
        big.send(vec![7u8; 100_000], 0).unwrap();
        rig.until("the drop", |r| !r.notes.is_empty());
        assert_eq!(rig.notes[0].0, LogLevel::Warn);
        assert!(
            rig.notes[0].1.contains("over the limit of 1000"),
            "{:?}",
            rig.notes
        );
        assert!(rig.inputs.is_empty());
        let small = socket(&ctx, zmq::DEALER);
        small.connect(rig.ep.address()).unwrap();
        small.send("fits", 0).unwrap();
        let got = rig.receive(1);
        assert_eq!(got[0][1], b(b"fits"));
        assert_eq!(rig.ep.send(&got[0]), Sent::Done);
        assert_eq!(rig.recv(&small), vec![b"fits".to_vec()]);
    }

    #[test]
    fn a_frame_far_over_the_tasks_limit_cuts_its_peer_off_and_one_just_over_reaches_it() {
        let limits = Limits::for_task(Some(1000));
        assert_eq!(limits.frame, 1000 + OVER_LIMIT);
        assert_eq!(limits.message, MAX_MESSAGE);
        let ctx = zmq::Context::new();
        let mut rig = Rig::with_limits("tcp://127.0.0.1:*", limits);
        let other = socket(&ctx, zmq::DEALER);
        other.connect(rig.ep.address()).unwrap();
        other.send("before", 0).unwrap();
        let before = rig.receive(1);
        // Over the task's limit but within reach: the task gets it (and answers 413).
        let near = socket(&ctx, zmq::DEALER);
        near.connect(rig.ep.address()).unwrap();
        near.send_multipart([&b""[..], &[1u8; 1500][..]], 0)
            .unwrap();
        let got = rig.receive(1);
        assert_eq!(got[0][2].len(), 1500);
        // One frame past the reach: the connection goes from its header on, unread.
        let far = socket(&ctx, zmq::DEALER);
        let monitor = "inproc://far-monitor";
        far.monitor(monitor, zmq::SocketEvent::DISCONNECTED as i32)
            .unwrap();
        let events = ctx.socket(zmq::PAIR).unwrap();
        events.connect(monitor).unwrap();
        far.connect(rig.ep.address()).unwrap();
        far.send(vec![7u8; 2 << 20], 0).unwrap();
        rig.until("the drop", |r| !r.notes.is_empty());
        assert_eq!(rig.notes[0].0, LogLevel::Warn);
        assert!(
            rig.notes[0].1.contains(&format!(
                "frame of {} bytes is over the limit of {}",
                2 << 20,
                1000 + OVER_LIMIT
            )),
            "{:?}",
            rig.notes
        );
        assert!(rig.inputs.is_empty(), "nothing of it was delivered");
        // The peer saw its connection end (libzmq then connects again, on its own).
        events.set_rcvtimeo(10_000).unwrap();
        let event = events.recv_multipart(0).unwrap();
        let kind = u16::from_le_bytes([event[0][0], event[0][1]]);
        assert_eq!(kind, zmq::SocketEvent::DISCONNECTED as u16);
        // The others are served as before.
        assert_eq!(rig.ep.send(&before[0]), Sent::Done);
        assert_eq!(rig.recv(&other), vec![b"before".to_vec()]);
        assert_eq!(
            rig.ep.send(&[got[0][0].clone(), b(b""), b(b"413")]),
            Sent::Done
        );
        assert_eq!(rig.recv(&near), vec![vec![], b"413".to_vec()]);
        // A new version of the task with a larger limit: the same frame now gets through,
        // on a connection that was open before.
        rig.ep.set_limits(Limits::for_task(Some(4 << 20)));
        other.send(vec![7u8; 2 << 20], 0).unwrap();
        let got = rig.receive(1);
        assert_eq!(got[0][1].len(), 2 << 20);
    }

    #[test]
    fn a_peer_leaving_mid_message_or_with_replies_queued_is_forgotten() {
        let ctx = zmq::Context::new();
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1 << 20);
        let addr = rig.ep.address().trim_start_matches("tcp://").to_owned();
        // A raw peer: a DEALER's handshake, then half a message, then gone.
        let mut raw = TcpStream::connect(&addr).unwrap();
        raw.write_all(&hello(b"DEALER")).unwrap();
        rig.until("the connection", |r| r.ep.connections() == 1);
        raw.write_all(&[0x01, 3, b'a', b'b', b'c', 0x00, 10, b'x'])
            .unwrap();
        // An end (FIN), not a reset: closing with our greeting unread would reset.
        raw.shutdown(std::net::Shutdown::Write).unwrap();
        rig.until("the drop", |r| r.ep.connections() == 0);
        assert!(
            rig.notes.iter().any(|(_, m)| m.contains("a frame")),
            "{:?}",
            rig.notes
        );
        assert!(rig.inputs.is_empty());
        // A DEALER that asks, then closes before its (large) replies are written.
        let dealer = socket(&ctx, zmq::DEALER);
        dealer.connect(rig.ep.address()).unwrap();
        dealer.send("ask", 0).unwrap();
        let got = rig.receive(1);
        let routing = got[0][0].clone();
        let big = Bytes::from(vec![1u8; 1 << 20]);
        for _ in 0..8 {
            assert!(matches!(
                rig.ep.send(&[routing.clone(), big.clone()]),
                Sent::Done | Sent::Queued
            ));
        }
        drop(dealer);
        rig.until("the drop", |r| r.ep.connections() == 0);
        assert_eq!(rig.ep.send(&[routing, big]), Sent::Unroutable);
    }

    #[test]
    fn ipc_peers_are_served_and_the_socket_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("router.sock");
        let address = format!("ipc://{}", path.display());
        assert!(serves(&address));
        assert!(!serves("ipc://@abstract"));
        assert!(!serves("inproc://x"));
        // A file left behind by an earlier run is replaced.
        std::fs::write(&path, b"stale").unwrap();
        let ctx = zmq::Context::new();
        let mut rig = Rig::new(&address, 1 << 20);
        let dealer = socket(&ctx, zmq::DEALER);
        dealer.connect(&address).unwrap();
        dealer.send("over ipc", 0).unwrap();
        let got = rig.receive(1);
        assert_eq!(rig.ep.send(&got[0]), Sent::Done);
        assert_eq!(rig.recv(&dealer), vec![b"over ipc".to_vec()]);
        // A reply sent in the pass that closes the endpoint still arrives.
        dealer.send("last", 0).unwrap();
        let got = rig.receive(1);
        assert_eq!(rig.ep.send(&got[0]), Sent::Done);
        let Rig { mut rt, ep, .. } = rig;
        ep.close(&mut rt);
        let start = Instant::now();
        let last = loop {
            match dealer.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => break frames,
                Err(zmq::Error::EAGAIN) => assert!(start.elapsed().as_secs() < 10, "no reply"),
                Err(e) => panic!("{e}"),
            }
            std::thread::yield_now();
        };
        assert_eq!(last, vec![b"last".to_vec()]);
        assert!(rt.watched.is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn a_wrong_socket_type_is_refused() {
        let mut rig = Rig::new("tcp://127.0.0.1:*", 1 << 20);
        let addr = rig.ep.address().trim_start_matches("tcp://").to_owned();
        let mut raw = TcpStream::connect(&addr).unwrap();
        raw.write_all(&hello(b"PUB")).unwrap();
        rig.until("the refusal", |r| !r.notes.is_empty());
        assert_eq!(rig.notes[0].0, LogLevel::Warn);
        assert!(rig.notes[0].1.contains("PUB socket"), "{:?}", rig.notes);
        assert_eq!(rig.ep.connections(), 0);
        // The peer was told why: our greeting, READY, then ERROR.
        let mut told = Vec::new();
        let _ = std::io::Read::read_to_end(&mut raw, &mut told);
        assert!(told.windows(5).any(|w| w == b"ERROR"), "{told:?}");
        // A libzmq PUSH never gets a message through either (libzmq or we refuse it).
        let ctx = zmq::Context::new();
        let push = socket(&ctx, zmq::PUSH);
        push.connect(rig.ep.address()).unwrap();
        push.send("hi", 0).unwrap();
        rig.until("the peer gone", |r| r.notes.len() > 1);
        assert!(rig.inputs.is_empty());
    }
}
