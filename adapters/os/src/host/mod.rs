//! The node's event loop, written once for every runtime: [`Host::run`].
//!
//! A runtime implements only [`Runtime`]: watch a descriptor on behalf of a [`Source`],
//! change what it is watched for, stop watching, wait (until a watched source is ready, a
//! signal is caught, or a deadline), and tell the time. Everything else lives here: the
//! tables of IO resources by the ids the core uses, carrying out outputs, accepting,
//! reading and writing worker channels, reading worker output, reaping exits, stopping on
//! signals, taking inputs other threads left in the [`Inbox`], and handing store operations
//! to the [`StoreThread`].
//!
//! # The loop
//!
//! ```text
//! loop {
//!     settle: feed every pending input to the node, carry out its outputs, write what
//!             they queued for workers and TCP clients (one write each), drain the ZeroMQ
//!             endpoints that may hold something unseen; repeat until no input is left
//!     if the node has stopped: return
//!     wait: until a source is ready, a signal, or the node's next timer
//!           (no sleep at all while an endpoint still has messages)
//!     woke: in this order,
//!           1. each ready source, in the order the runtime reported them
//!              (read until it would block; accept; write what waits)
//!           2. each signal: SIGCHLD reaps exited workers (reading what each wrote before it
//!              exited first), SIGINT/SIGTERM stop the node gracefully, a second one at once
//!           3. lingering TCP connections whose time is up are dropped
//!           4. `Input::Tick`, if the node's timer is due (any other input fires due
//!              timers too, so a wake-up for IO alone adds nothing)
//! }
//! ```
//!
//! The host takes time only from [`Runtime::now`], so it runs on simulated time in tests
//! (see this module's tests: timers fire without sleeping).
//!
//! # Readiness may be edge-triggered
//!
//! Every source is read (or written, or accepted) until it would block whenever it is
//! reported, so a runtime reports it again only when something new happens. ZeroMQ's
//! `ZMQ_FD` is the exception that needs care (see [`endpoints`]): the host drains an
//! endpoint when its descriptor fires *and* after every send on it.

mod endpoints;
mod execute;
mod runtime;
mod workers;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use cocaine_core::node::{Input, Node, Output};
use cocaine_core::process::LogLevel;
use cocaine_store::Store;

use crate::fs_watch::FsWatcher;
use crate::inbox::Inbox;
use crate::store::StoreThread;
use crate::tcp::TcpTable;
use crate::udp::UdpTable;
use endpoints::Endpoints;
use workers::Workers;

pub use endpoints::RECV_BATCH;
pub use runtime::{run_blocking, system_now, Ready, Runtime, Source, Wake};

/// What the embedding program wants after seeing an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    Continue,
    /// Stop the node gracefully, as SIGTERM would.
    Shutdown,
}

/// What [`Host::new`] takes besides the node, the observer and the runtime.
pub struct Setup {
    /// Inputs the node takes before anything else: command-line deploys, then the apps and
    /// jobs restored from the store.
    pub first: Vec<Input>,
    /// The app store, written by a thread of its own. Without one, every `Output::Store`
    /// comes back as an error.
    pub store: Option<Store>,
    /// Where other threads (the folder watcher) push inputs while the node runs; the host
    /// watches it, and the store thread reports through it.
    pub inbox: Inbox,
}

impl Setup {
    /// `first` inputs, no store, a new inbox.
    pub fn new(first: Vec<Input>) -> io::Result<Setup> {
        Ok(Setup {
            first,
            store: None,
            inbox: Inbox::new()?,
        })
    }
}

/// Sees every output that is not IO (logs, app events, `Output::Fatal`, `Output::Stopped`).
pub type Observe<'a> = &'a mut dyn FnMut(&Output) -> Reaction;

/// The node, the runtime, the resources the node asked for and the inputs waiting for it.
pub struct Host<'a, R> {
    runtime: R,
    node: Node,
    endpoints: Endpoints,
    workers: Workers,
    tcp: TcpTable,
    udp: UdpTable,
    inputs: VecDeque<Input>,
    observe: Observe<'a>,
    stopped: bool,
    interrupts: u32,
    inbox: Inbox,
    /// None without a store. Dropped with the host, which waits for the writes asked for.
    store: Option<StoreThread>,
    /// The thread of filesystem-monitor watches, started with the first one.
    fs: Option<FsWatcher>,
}

impl<'a, R: Runtime> Host<'a, R> {
    /// Watches the inbox and starts the store thread; fails if either cannot be set up.
    pub fn new(node: Node, setup: Setup, observe: Observe<'a>, mut runtime: R) -> io::Result<Self> {
        let Setup {
            first,
            store,
            inbox,
        } = setup;
        let store = match store {
            Some(store) => Some(StoreThread::spawn(store, inbox.clone())?),
            None => None,
        };
        runtime.watch(Source::Inbox, inbox.fd())?;
        let mut inputs: VecDeque<Input> = first.into();
        // Pushed before the loop started: after the first inputs, as if they came at once.
        inbox.take(&mut inputs);
        Ok(Self {
            runtime,
            node,
            endpoints: Endpoints::new(),
            workers: Workers::default(),
            tcp: TcpTable::default(),
            udp: UdpTable::default(),
            inputs,
            observe,
            stopped: false,
            interrupts: 0,
            inbox,
            store,
            fs: None,
        })
    }

    /// Runs the node until it reports `Output::Stopped` after a shutdown (or a second
    /// SIGINT/SIGTERM forces it). Fails only if the runtime cannot wait. A blocking runtime
    /// runs it with [`run_blocking`], an async one as a task.
    pub async fn run(mut self) -> io::Result<()> {
        let mut wake = Wake::default();
        while self.turn(&mut wake).await? {}
        Ok(())
    }

    /// One turn of the loop: settle, wait, take in what the wait found. False once the node
    /// has stopped.
    async fn turn(&mut self, wake: &mut Wake) -> io::Result<bool> {
        let busy = self.settle();
        if self.stopped {
            return Ok(false);
        }
        let timer = self.node.poll_timeout();
        let deadline = if busy {
            Some(self.runtime.now().mono)
        } else {
            timer
        };
        wake.clear();
        self.runtime.wait(deadline, wake).await?;
        self.woke(wake, timer);
        Ok(true)
    }

    /// Feeds pending inputs, carries out outputs and drains endpoints until nothing is left
    /// to do without waiting, then writes what the pass queued. Returns true if an endpoint
    /// still has messages.
    fn settle(&mut self) -> bool {
        loop {
            let now = self.runtime.now();
            while let Some(input) = self.inputs.pop_front() {
                self.node.handle_input(now, input);
            }
            while let Some(output) = self.node.poll_output() {
                self.execute(output);
            }
            // One write per worker and connection for all this pass gave it; every pass, so
            // that workers get work while clients keep the endpoints busy.
            self.workers.flush(&mut self.runtime);
            self.tcp.flush(&mut self.runtime, &mut self.inputs);
            self.flush_zmtp();
            if self.stopped {
                return false;
            }
            let more = self.endpoints.drain(&mut self.inputs);
            if self.inputs.is_empty() {
                return more;
            }
        }
    }

    /// What a wait found, in the order the module docs give.
    fn woke(&mut self, wake: &Wake, timer: Option<Instant>) {
        for ready in &wake.ready {
            self.ready(*ready);
        }
        for signal in &wake.signals {
            self.signal(*signal);
        }
        let now = self.runtime.now().mono;
        self.tcp.expire(now, &mut self.runtime);
        if timer.is_some_and(|at| at <= now) {
            self.inputs.push_back(Input::Tick);
        }
    }

    /// Reads, accepts or writes what `ready` allows.
    fn ready(&mut self, ready: Ready) {
        let Ready {
            source,
            readable,
            writable,
            hangup,
        } = ready;
        let (runtime, inputs) = (&mut self.runtime, &mut self.inputs);
        match source {
            Source::Endpoint(endpoint) => self.endpoints.fired(endpoint),
            Source::Listener(worker) => {
                if let Err(message) = self.workers.accept(worker, runtime, inputs) {
                    self.log(LogLevel::Warn, message);
                }
            }
            Source::Channel(worker) => {
                if hangup {
                    self.workers.read_channel_to_end(worker, runtime, inputs);
                } else if readable {
                    self.workers.read_channel(worker, runtime, inputs);
                }
                if writable {
                    self.workers.flush_one(worker, runtime);
                }
            }
            Source::Output(worker) => self.workers.read_output(worker, runtime, inputs),
            Source::Inbox => self.take_inbox(),
            Source::TcpListener(endpoint) => self.tcp.accept(endpoint, runtime, inputs),
            Source::Conn(conn) => self.tcp.ready(conn, ready, runtime, inputs),
            Source::Udp(endpoint) => self.udp.read(endpoint, inputs),
            Source::ZmtpListener(endpoint) => self.endpoints.accept(endpoint, runtime, inputs),
            Source::ZmtpConn(endpoint, conn) => {
                self.endpoints.ready(endpoint, conn, ready, runtime, inputs)
            }
        }
    }

    /// Writes the replies of this pass to ZMTP peers, and logs the connections dropped.
    fn flush_zmtp(&mut self) {
        let mut notes = Vec::new();
        self.endpoints.flush(&mut self.runtime, &mut notes);
        for (level, message) in notes {
            self.log(level, message);
        }
    }

    /// A signal the runtime caught: SIGCHLD reaps workers; SIGINT or SIGTERM stops the node
    /// gracefully, a second one at once.
    fn signal(&mut self, signal: libc::c_int) {
        if signal == libc::SIGCHLD {
            self.workers.reap(&mut self.runtime, &mut self.inputs);
            self.log_fork_notes();
            return;
        }
        self.interrupts += 1;
        if self.interrupts == 1 {
            self.log(
                LogLevel::Info,
                "stopping: finishing running jobs (again to force)".to_owned(),
            );
            self.inputs.push_back(Input::Shutdown);
        } else {
            self.log(LogLevel::Warn, "stopping now: killing workers".to_owned());
            self.workers.close_all(&mut self.runtime);
            self.stopped = true;
        }
    }

    /// Takes what other threads left. A worker thread's exit comes this way: what it wrote
    /// before is read first (as reaping does for processes), and the exit of a thread
    /// retired already is dropped, since the core was told then.
    fn take_inbox(&mut self) {
        let mut taken = Vec::new();
        self.inbox.take(&mut taken);
        for input in taken {
            if let Input::WorkerExited { worker, .. } = input {
                if !self.workers.is_thread(worker) {
                    continue;
                }
                let (runtime, inputs) = (&mut self.runtime, &mut self.inputs);
                if let Err(message) = self.workers.accept(worker, runtime, inputs) {
                    self.log(LogLevel::Warn, message);
                }
                let (runtime, inputs) = (&mut self.runtime, &mut self.inputs);
                self.workers.read_channel_to_end(worker, runtime, inputs);
            }
            self.inputs.push_back(input);
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let _ = (self.observe)(&Output::Log { level, message });
    }
}
