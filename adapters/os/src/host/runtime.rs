//! The contract between the host and a runtime: [`Runtime`], what it reports from a wait
//! ([`Wake`]) and the descriptors it watches ([`Source`]).

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::time::{Instant, SystemTime};

use cocaine_core::{ConnId, EndpointId, Now, WorkerId};

/// A descriptor the host asks a runtime to watch, by what it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A ZeroMQ endpoint's `ZMQ_FD`: only "something changed", edge-triggered. The host
    /// drains the endpoint after each such report, and after each send on it.
    Endpoint(EndpointId),
    /// A worker's socket, until the worker connects.
    Listener(WorkerId),
    /// A worker's connected channel: readable, and writable while bytes wait.
    Channel(WorkerId),
    /// A worker's stdout and stderr pipe.
    Output(WorkerId),
    /// The inbox's wake-up descriptor: other threads left inputs.
    Inbox,
    /// A raw server's TCP listener: readable when clients wait to be accepted.
    TcpListener(EndpointId),
    /// An accepted TCP connection: readable, and writable while bytes wait.
    Conn(ConnId),
    /// A discovery UDP socket: readable when datagrams wait.
    Udp(EndpointId),
    /// A ROUTER endpoint the node serves itself (ZMTP): its listener.
    ZmtpListener(EndpointId),
    /// One of its connections, by the endpoint and the connection's number.
    ZmtpConn(EndpointId, u32),
}

/// A watched source found ready by a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub source: Source,
    /// Readable, at end of file, or failed (the read finds out which).
    pub readable: bool,
    /// Writable, or failed (the write finds out).
    pub writable: bool,
    /// The peer hung up. An edge-triggered runtime must say so: the end of a stream that
    /// came with its last bytes shows only to a read after them, which the host then makes
    /// (otherwise a short read ends its reading).
    pub hangup: bool,
}

/// What one wait found: ready sources in the order the runtime saw them, and the signals
/// caught (SIGCHLD, SIGINT, SIGTERM). The host reuses one `Wake` for every wait.
#[derive(Debug, Default)]
pub struct Wake {
    pub ready: Vec<Ready>,
    pub signals: Vec<libc::c_int>,
}

impl Wake {
    pub fn clear(&mut self) {
        self.ready.clear();
        self.signals.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.signals.is_empty()
    }
}

/// Everything the host needs from a runtime: readiness of descriptors, signals, and time.
///
/// Readiness may be edge-triggered: the host reads and writes every ready source until it
/// would block, so a runtime needs to report a source again only once something new
/// happened to it. A level-triggered runtime works too, at the cost of spurious reports.
pub trait Runtime {
    /// Starts watching `fd` for readability (and end of file) on behalf of `source`. The
    /// descriptor stays open until [`Runtime::unwatch`] is called for `source`.
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()>;
    /// Whether `source` should wake the loop when it is readable (it does from `watch` on).
    /// Turned off once a TCP connection's input has ended, since an ended stream stays
    /// readable for good.
    fn want_read(&mut self, source: Source, read: bool);
    /// Whether `source` should also wake the loop when it can be written to (it does not
    /// from `watch` on). Asked after every flush; only a change needs work.
    fn want_write(&mut self, source: Source, write: bool);
    /// Stops watching `source`. Called while its descriptor is still open.
    fn unwatch(&mut self, source: Source);
    /// Waits until a watched source is ready, a signal is caught, or `deadline` passes (none:
    /// no deadline; one already passed: do not sleep, report what is ready now). Appends what
    /// it found to `wake`, which the host has cleared. A report about a source unwatched
    /// meanwhile is harmless: the host ignores sources it no longer has.
    ///
    /// A future, so that an async runtime runs the whole loop as one task; a blocking one
    /// waits in the call and returns a future that is ready at once.
    fn wait(
        &mut self,
        deadline: Option<Instant>,
        wake: &mut Wake,
    ) -> impl Future<Output = io::Result<()>>;
    /// The current time: the node's timers and deadlines run on it. A test runtime may
    /// simulate it.
    fn now(&self) -> Now;
}

/// The operating system's clocks, for runtimes that run on real time.
pub fn system_now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

/// Runs a future whose every wait is ready at once (a blocking runtime's `Host::run`): it
/// completes in one poll, so no waker is ever needed.
pub fn run_blocking<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let cx = &mut std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(cx) {
            return value;
        }
    }
}
