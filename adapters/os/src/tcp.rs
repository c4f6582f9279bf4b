//! Plain TCP for raw servers: non-blocking std listeners and connections, watched through the
//! host's [`Runtime`] like every other descriptor.
//!
//! The core sees a connection as `Input::Accepted`, `ConnData`, `ConnEof` and `ConnClosed`,
//! and speaks to it with `Output::ConnSend` and `ConnClose`. Reads go until the socket would
//! block (readiness may be edge-triggered); writes are queued and flushed once per pass, the
//! rest when the socket is writable again. A connection the core closes is flushed, its
//! sending side shut down, and it then *lingers* a little, reading and dropping whatever the
//! client still sends: closing a socket with unread input makes the kernel send a reset,
//! which may destroy the last reply (an `ERROR 413` line) before the client reads it.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocaine_core::ids::IdMap;
use cocaine_core::node::{BindError, Input};
use cocaine_core::{ConnId, EndpointId};

use crate::boundary::bind_io;
use crate::endpoint::{self, EndpointError};
use crate::host::{Ready, Runtime, Source};
use crate::write_queue::WriteQueue;

/// The most one read takes.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes a connection may have queued for a client that does not read; past this the
/// connection is dropped (the core hears `ConnClosed` and cancels its jobs).
pub const MAX_BACKLOG: usize = 64 << 20;
/// How long a closed connection keeps reading what its client still sends (checked whenever
/// the loop wakes; a client that closes ends it sooner).
pub const LINGER: Duration = Duration::from_secs(2);

/// Why a TCP endpoint cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error(transparent)]
    Address(#[from] EndpointError),
    #[error("{address}: not tcp://HOST:PORT")]
    Syntax { address: String },
    #[error("{address}: {error}")]
    Resolve { address: String, error: io::Error },
    #[error("{error}")]
    Io {
        #[from]
        error: io::Error,
    },
}

/// The socket address for `tcp://HOST:PORT` (interface names allowed, `*` for any host or
/// an ephemeral port).
pub fn socket_address(address: &str) -> Result<SocketAddr, TcpError> {
    let resolved = endpoint::resolve(address)?;
    let syntax = || TcpError::Syntax {
        address: address.to_owned(),
    };
    let rest = resolved.strip_prefix("tcp://").ok_or_else(syntax)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(syntax)?;
    let host = match host {
        "*" => "0.0.0.0",
        h => h.trim_start_matches('[').trim_end_matches(']'),
    };
    let port: u16 = match port {
        "*" => 0,
        p => p.parse().map_err(|_| syntax())?,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|error| TcpError::Resolve {
            address: address.to_owned(),
            error,
        })?
        .next()
        .ok_or_else(syntax)
}

/// A listener bound at `address`, non-blocking.
pub fn listen(address: &str) -> Result<TcpListener, TcpError> {
    // std sets SO_REUSEADDR on Unix, so a restarted node can bind again at once.
    let listener = TcpListener::bind(socket_address(address)?)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[derive(Debug)]
enum State {
    Open,
    /// The core closed it: write what is queued, then shut down and linger.
    Closing,
    /// Sent all and shut down; dropping what arrives until the client closes or time is up.
    Lingering {
        until: Instant,
    },
}

/// One accepted connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    outbox: WriteQueue,
    /// The client sends no more.
    eof: bool,
    /// The core asked to stop reading (`Output::ConnReading`): the client's bytes wait in
    /// the kernel. Only an open connection pauses; a closing one reads to linger.
    paused: bool,
    state: State,
}

/// What a read found.
enum Got {
    /// Bytes, and whether they filled the buffer (so that more may wait).
    Data(Bytes, bool),
    Nothing,
    Eof,
    Failed,
}

impl Conn {
    fn read(&mut self, scratch: &mut [u8]) -> Got {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Got::Eof,
                Ok(n) => {
                    return Got::Data(Bytes::copy_from_slice(&scratch[..n]), n == scratch.len())
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Got::Nothing,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Got::Failed,
            }
        }
    }

    /// Writes what is queued until the socket would block, several buffers per call.
    fn flush(&mut self) -> io::Result<()> {
        self.outbox.flush_to(&mut self.stream)
    }
}

/// Every TCP listener and connection of the host, by the ids the core knows them by.
#[derive(Debug)]
pub struct TcpTable {
    listeners: IdMap<EndpointId, TcpListener>,
    conns: IdMap<ConnId, Conn>,
    next_conn: u64,
    /// Connections written to in this pass.
    unflushed: Vec<ConnId>,
    /// Connections that started lingering, so expiring them costs nothing without any.
    lingering: Vec<ConnId>,
    scratch: Box<[u8]>,
}

impl Default for TcpTable {
    fn default() -> Self {
        Self {
            listeners: IdMap::default(),
            conns: IdMap::default(),
            next_conn: 1,
            unflushed: Vec::new(),
            lingering: Vec::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }
}

impl TcpTable {
    /// Listens at `address` for `endpoint` and watches the listener.
    pub fn listen(
        &mut self,
        endpoint: EndpointId,
        address: &str,
        readiness: &mut impl Runtime,
    ) -> Result<(), BindError> {
        let listener = listen(address).map_err(BindError::from)?;
        readiness
            .watch(Source::TcpListener(endpoint), listener.as_raw_fd())
            .map_err(|e| bind_io(&e, e.to_string()))?;
        self.listeners.insert(endpoint, listener);
        Ok(())
    }

    /// Stops listening for `endpoint`; false if it is not a TCP endpoint. Its connections
    /// stay until the core closes them.
    pub fn unlisten(&mut self, endpoint: EndpointId, readiness: &mut impl Runtime) -> bool {
        if !self.listeners.contains_key(&endpoint) {
            return false;
        }
        // Unwatched while its descriptor is still open (the `Runtime` contract): a closed
        // descriptor's number may already belong to someone else.
        readiness.unwatch(Source::TcpListener(endpoint));
        self.listeners.remove(&endpoint);
        true
    }

    /// Takes every waiting client of `endpoint`.
    pub fn accept(
        &mut self,
        endpoint: EndpointId,
        readiness: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        loop {
            let Some(listener) = self.listeners.get(&endpoint) else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: all taken. Anything else (out of descriptors, a client that
                // reset before we took it) ends this round; the next readiness retries.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Replies are small and must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            if readiness
                .watch(Source::Conn(conn), stream.as_raw_fd())
                .is_err()
            {
                continue;
            }
            self.conns.insert(
                conn,
                Conn {
                    stream,
                    outbox: WriteQueue::default(),
                    eof: false,
                    paused: false,
                    state: State::Open,
                },
            );
            inputs.push_back(Input::Accepted {
                endpoint,
                conn,
                peer: peer.to_string(),
            });
            // Bytes may already wait: the readiness edge may have come before registration.
            self.read(conn, readiness, inputs);
        }
    }

    /// `conn` is ready: read, write, or read to the end when the client hung up.
    pub fn ready(
        &mut self,
        conn: ConnId,
        ready: Ready,
        readiness: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        let Ready {
            readable,
            writable,
            hangup,
            ..
        } = ready;
        if hangup {
            self.read_until(conn, true, readiness, inputs);
        } else if readable {
            self.read(conn, readiness, inputs);
        }
        if writable {
            self.flush_one(conn, readiness, inputs);
        }
    }

    /// Queues bytes for `conn`; written at the end of the pass.
    pub fn send(&mut self, conn: ConnId, bytes: Bytes) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if matches!(c.state, State::Open) {
            c.outbox.push(bytes);
            self.unflushed.push(conn);
        }
    }

    /// Stops or resumes reading `conn` for the core. Resuming reads at once: readiness may be
    /// edge-triggered, and the edge for bytes that arrived while paused has passed.
    pub fn set_reading(
        &mut self,
        conn: ConnId,
        on: bool,
        readiness: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.eof || !matches!(c.state, State::Open) || c.paused != on {
            return;
        }
        c.paused = !on;
        readiness.want_read(Source::Conn(conn), on);
        if on {
            self.read(conn, readiness, inputs);
        }
    }

    /// The core is done with `conn`: it closes once what is queued is written.
    pub fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if matches!(c.state, State::Open) {
                c.state = State::Closing;
                self.unflushed.push(conn);
            }
        }
    }

    /// Writes what this pass queued; drops lingering connections whose time is up.
    pub fn flush(&mut self, readiness: &mut impl Runtime, inputs: &mut VecDeque<Input>) {
        let mut conns = std::mem::take(&mut self.unflushed);
        conns.sort_unstable();
        conns.dedup();
        for conn in conns.drain(..) {
            self.flush_one(conn, readiness, inputs);
        }
        self.unflushed = conns;
    }

    /// Drops lingering connections whose time is up.
    pub fn expire(&mut self, now: Instant, readiness: &mut impl Runtime) {
        if self.lingering.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        let conns = &self.conns;
        self.lingering
            .retain(|conn| match conns.get(conn).map(|c| &c.state) {
                Some(State::Lingering { until }) if *until <= now => {
                    expired.push(*conn);
                    false
                }
                Some(State::Lingering { .. }) => true,
                _ => false,
            });
        for conn in expired {
            self.drop_conn(conn, readiness);
        }
    }

    /// Reads what the connection holds: until a short read, which on a stream socket means
    /// its buffer was empty (asking again would only cost a system call that says so).
    fn read(&mut self, conn: ConnId, readiness: &mut impl Runtime, inputs: &mut VecDeque<Input>) {
        self.read_until(conn, false, readiness, inputs);
    }

    /// Reads until the connection would block or ends (`to_end`: the client hung up, and an
    /// end of file that came with the last bytes shows only to one more read).
    fn read_until(
        &mut self,
        conn: ConnId,
        to_end: bool,
        readiness: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let open = matches!(c.state, State::Open);
            // A hang-up is read to its end even while paused: the client is gone, what it
            // left is bounded by the kernel's buffers, and an unread hang-up stays ready.
            if c.eof || (c.paused && open && !to_end) {
                return;
            }
            match c.read(&mut self.scratch) {
                Got::Data(bytes, full) => {
                    // A closing connection's input is dropped: the core has finished with it.
                    if open {
                        inputs.push_back(Input::ConnData { conn, bytes });
                    }
                    if !full && !to_end {
                        return;
                    }
                }
                Got::Nothing => return,
                Got::Eof => {
                    c.eof = true;
                    if matches!(c.state, State::Lingering { .. }) {
                        self.drop_conn(conn, readiness);
                        return;
                    }
                    // An ended stream stays readable: stop asking, or the loop would spin.
                    readiness.want_read(Source::Conn(conn), false);
                    if open {
                        inputs.push_back(Input::ConnEof { conn });
                    }
                    return;
                }
                Got::Failed => {
                    self.drop_conn(conn, readiness);
                    if open {
                        inputs.push_back(Input::ConnClosed { conn });
                    }
                    return;
                }
            }
        }
    }

    fn flush_one(
        &mut self,
        conn: ConnId,
        readiness: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let open = matches!(c.state, State::Open);
        let failed = c.flush().is_err() || (open && c.outbox.len() > MAX_BACKLOG);
        if failed {
            self.drop_conn(conn, readiness);
            if open {
                inputs.push_back(Input::ConnClosed { conn });
            }
            return;
        }
        let pending = !c.outbox.is_empty();
        readiness.want_write(Source::Conn(conn), pending);
        if pending || !matches!(c.state, State::Closing) {
            return;
        }
        // All written: tell the client with a FIN, then linger until it closes.
        let _ = c.stream.shutdown(Shutdown::Write);
        if c.eof {
            self.drop_conn(conn, readiness);
        } else {
            c.state = State::Lingering {
                until: readiness.now().mono + LINGER,
            };
            self.lingering.push(conn);
            if std::mem::take(&mut c.paused) {
                // Lingering drains what the client sent while reading was paused.
                readiness.want_read(Source::Conn(conn), true);
                self.read(conn, readiness, inputs);
            }
        }
    }

    fn drop_conn(&mut self, conn: ConnId, readiness: &mut impl Runtime) {
        if self.conns.contains_key(&conn) {
            readiness.unwatch(Source::Conn(conn));
            self.conns.remove(&conn);
        }
    }

    /// The address a listener is bound at (its port resolved).
    pub fn local_address(&self, endpoint: EndpointId) -> Option<SocketAddr> {
        self.listeners
            .get(&endpoint)
            .and_then(|l| l.local_addr().ok())
    }

    /// Open connections, lingering ones included.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_interfaces_and_wildcards() {
        assert_eq!(
            socket_address("tcp://lo:9300").unwrap(),
            "127.0.0.1:9300".parse().unwrap()
        );
        assert_eq!(
            socket_address("tcp://*:9300").unwrap(),
            "0.0.0.0:9300".parse().unwrap()
        );
        assert_eq!(
            socket_address("tcp://[::1]:*").unwrap(),
            "[::1]:0".parse().unwrap()
        );
        assert!(socket_address("tcp://127.0.0.1").is_err());
        assert!(socket_address("tcp://no-such-iface0:1")
            .unwrap_err()
            .to_string()
            .contains("no-such-iface0"));
    }
}
