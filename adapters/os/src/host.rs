//! What every runtime does between two wake-ups, written once: the tables of IO resources by
//! the ids the core uses, carrying out outputs, settling (feed inputs, execute outputs, drain
//! endpoints, flush channels until nothing is left without waiting), accepting, reading and
//! writing worker channels, reading worker output, reaping exits and reacting to signals;
//! taking inputs other threads left in the [`Inbox`], and handing store operations to the
//! [`StoreThread`].
//!
//! A runtime supplies only readiness, through [`Readiness`]: watch a descriptor for a
//! [`Source`], say whether writability matters too, stop watching. Its loop is then:
//!
//! ```text
//! loop {
//!     let busy = host.settle();
//!     if host.stopped() { return }
//!     wait for readiness of the watched sources (no wait if busy) or host.next_timeout()
//!     host.woke();
//!     for each ready source: host.ready(source, readable, writable)
//!     for each signal caught: host.signal(signal)
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::RawFd;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use cocaine_core::engine::Backend;
use cocaine_core::node::{
    BindError, Input, Node, Output, SocketKind, SpawnError, SpawnSpec, StoreError, WatchError,
};
use cocaine_core::process::{LogLevel, Signal};
use cocaine_core::{ConnId, EndpointId, Now, WorkerId};

use cocaine_store::Store;

use crate::boundary::{bind_io, spawn_io};
use crate::channel::{Channel, ChannelListener, ReadOutcome};
use crate::fs_watch::FsWatcher;
use crate::inbox::Inbox;
use crate::process::WorkerProcess;
use crate::store::{StoreThread, NO_STORE};
use crate::tcp::TcpTable;
use crate::thread_worker;
use crate::zmq_endpoint::{Sent, ZmqEndpoint};

/// Messages taken from one endpoint per pass, so one busy client cannot starve the rest.
pub const RECV_BATCH: usize = 256;

/// What the embedding program wants after seeing an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop the node gracefully, as SIGTERM would.
    Shutdown,
}

/// A descriptor the host asks a runtime to watch, by what it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A ZeroMQ endpoint's `ZMQ_FD`: only "something changed"; the host re-checks every
    /// endpoint after every wake-up anyway.
    Endpoint(EndpointId),
    /// A worker's socket, until the worker connects.
    Listener(WorkerId),
    /// A worker's connected channel: readable, and writable while bytes wait.
    Channel(WorkerId),
    /// A worker's stdout and stderr pipe.
    Output(WorkerId),
    /// The [`Inbox`]'s wake-up descriptor: other threads left inputs.
    Inbox,
    /// A raw server's TCP listener: readable when clients wait to be accepted.
    TcpListener(EndpointId),
    /// An accepted TCP connection: readable, and writable while bytes wait.
    Conn(ConnId),
}

/// What a runtime's `run` takes besides the node and the observer.
pub struct Setup {
    /// Inputs the node takes before anything else: command-line deploys, then the apps and
    /// jobs restored from the store.
    pub first: Vec<Input>,
    /// The app store, written by a thread of its own. Without one, every `Output::Store`
    /// comes back as an error ([`NO_STORE`]).
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

/// The one thing a runtime implements for the host: readiness of descriptors.
pub trait Readiness {
    /// Starts watching `fd` for readability (and end of file) on behalf of `source`.
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()>;
    /// Whether `source` should also wake the loop when it can be written to. Called after
    /// every flush of a channel.
    fn want_write(&mut self, source: Source, write: bool);
    /// Whether `source` should still wake the loop when readable (it does from `watch` on).
    /// Turned off once a TCP connection's input has ended, since an ended stream stays
    /// readable for good.
    fn want_read(&mut self, source: Source, read: bool);
    /// Stops watching `source`. Called while its descriptor is still open.
    fn unwatch(&mut self, source: Source);
}

/// One worker's descriptors: the listener until it connects, then its channel; its process
/// and output pipe until it has exited and the pipe is drained.
#[derive(Debug, Default)]
struct WorkerIo {
    listener: Option<ChannelListener>,
    channel: Option<Channel>,
    process: Option<WorkerProcess>,
    /// The output pipe is watched.
    output: bool,
    /// A thread of this node rather than a process (see [`crate::thread_worker`]).
    thread: bool,
}

/// The node, the resources it asked for and the inputs waiting for it.
pub struct Host<'a, R> {
    /// The runtime's readiness; the runtime's loop reads it to wait.
    pub readiness: R,
    node: Node,
    context: zmq::Context,
    endpoints: HashMap<EndpointId, ZmqEndpoint>,
    workers: HashMap<WorkerId, WorkerIo>,
    inputs: VecDeque<Input>,
    observe: &'a mut dyn FnMut(&Output) -> Control,
    stopped: bool,
    interrupts: u32,
    inbox: Inbox,
    /// None without a store. Dropped with the host, which waits for the writes asked for.
    store: Option<StoreThread>,
    /// Workers with bytes queued in this pass.
    unflushed: Vec<WorkerId>,
    received: Vec<Vec<Bytes>>,
    /// The thread of filesystem-monitor watches, started with the first one.
    fs: Option<FsWatcher>,
    /// Raw servers' listeners and connections.
    tcp: TcpTable,
}

fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

impl<'a, R: Readiness> Host<'a, R> {
    /// Watches the inbox and starts the store thread; fails if either cannot be set up.
    pub fn new(
        node: Node,
        setup: Setup,
        observe: &'a mut dyn FnMut(&Output) -> Control,
        mut readiness: R,
    ) -> io::Result<Self> {
        let Setup {
            first,
            store,
            inbox,
        } = setup;
        let store = match store {
            Some(store) => Some(StoreThread::spawn(store, inbox.clone())?),
            None => None,
        };
        readiness.watch(Source::Inbox, inbox.fd())?;
        let mut inputs: VecDeque<Input> = first.into();
        // Pushed before the loop started: after the first inputs, as if they came at once.
        inbox.take(&mut inputs);
        Ok(Self {
            readiness,
            node,
            context: zmq::Context::new(),
            endpoints: HashMap::new(),
            workers: HashMap::new(),
            inputs,
            observe,
            stopped: false,
            interrupts: 0,
            inbox,
            store,
            unflushed: Vec::new(),
            received: Vec::new(),
            fs: None,
            tcp: TcpTable::default(),
        })
    }

    /// After `Output::Stopped`, or a forced stop: the runtime returns.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// When the node next needs time, if ever.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }

    /// The loop woke (for IO or time): the node gets a chance to act on time.
    pub fn woke(&mut self) {
        self.tcp.expire(Instant::now(), &mut self.readiness);
        self.inputs.push_back(Input::Tick);
    }

    /// Feeds pending inputs, carries out outputs and drains ready endpoints until nothing is
    /// left to do without waiting. Returns true if an endpoint still has messages (the next
    /// wait must not sleep).
    pub fn settle(&mut self) -> bool {
        loop {
            let now = now();
            while let Some(input) = self.inputs.pop_front() {
                self.node.handle_input(now, input);
            }
            while let Some(output) = self.node.poll_output() {
                self.execute(output);
            }
            self.flush_channels();
            self.tcp.flush(&mut self.readiness, &mut self.inputs);
            if self.stopped {
                return false;
            }
            let more = self.drain_endpoints();
            if self.inputs.is_empty() {
                return more;
            }
        }
    }

    /// `source` is ready: reads or writes what it can.
    pub fn ready(&mut self, source: Source, readable: bool, writable: bool) {
        match source {
            Source::Endpoint(_) => {} // drained in `settle`, edge or not
            Source::Listener(worker) => self.accept(worker),
            Source::Channel(worker) => {
                if readable {
                    self.read_channel(worker);
                }
                if writable {
                    self.flush_channel(worker);
                }
            }
            Source::Output(worker) => self.read_output(worker),
            Source::Inbox => self.take_inbox(),
            Source::TcpListener(endpoint) => {
                self.tcp
                    .accept(endpoint, &mut self.readiness, &mut self.inputs)
            }
            Source::Conn(conn) => self.tcp.ready(
                conn,
                readable,
                writable,
                &mut self.readiness,
                &mut self.inputs,
            ),
        }
    }

    /// A signal the runtime caught: SIGCHLD reaps workers; SIGINT or SIGTERM stops the node
    /// gracefully, a second one at once.
    pub fn signal(&mut self, signal: libc::c_int) {
        if signal == libc::SIGCHLD {
            self.reap();
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
            // Dropping each process kills and reaps it.
            let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
            for worker in ids {
                self.close_worker(worker);
            }
            self.stopped = true;
        }
    }

    /// `ZMQ_FD` only says "something changed": check every endpoint's events after any
    /// activity, receive what waits and retry held-back sends.
    fn drain_endpoints(&mut self) -> bool {
        let mut more = false;
        for (id, endpoint) in self.endpoints.iter_mut() {
            if endpoint.has_backlog() {
                endpoint.flush();
            }
            if endpoint.readable() {
                self.received.clear();
                if endpoint
                    .recv_some(RECV_BATCH, &mut self.received)
                    .unwrap_or(0)
                    == RECV_BATCH
                {
                    more = true;
                }
                for frames in self.received.drain(..) {
                    self.inputs.push_back(Input::Received {
                        endpoint: *id,
                        frames,
                    });
                }
            }
        }
        more
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Bind {
                endpoint,
                kind: SocketKind::Tcp,
                address,
                ..
            } => {
                let result = self.tcp.listen(endpoint, &address, &mut self.readiness);
                self.inputs.push_back(Input::Bound { endpoint, result });
            }
            Output::Bind {
                endpoint,
                kind,
                address,
                subscribe,
            } => {
                let result = ZmqEndpoint::open(&self.context, kind, &address, &subscribe)
                    .map_err(BindError::from)
                    .and_then(|ep| {
                        self.register_endpoint(endpoint, ep)
                            .map_err(|e| bind_io(&e, e.to_string()))
                    });
                self.inputs.push_back(Input::Bound { endpoint, result });
            }
            Output::Unbind { endpoint } => {
                if self.tcp.unlisten(endpoint, &mut self.readiness) {
                    return;
                }
                if self.endpoints.contains_key(&endpoint) {
                    self.readiness.unwatch(Source::Endpoint(endpoint));
                    self.endpoints.remove(&endpoint);
                }
            }
            Output::Send { endpoint, frames } => self.send(endpoint, frames),
            Output::Publish {
                endpoint,
                topic,
                value,
            } => self.send(endpoint, vec![topic, value]),
            Output::ConnSend { conn, bytes } => self.tcp.send(conn, bytes),
            Output::ConnClose { conn } => self.tcp.close(conn),
            Output::Spawn(spec) => {
                if let Err(error) = self.spawn(&spec) {
                    self.inputs.push_back(Input::SpawnFailed {
                        worker: spec.worker,
                        error,
                    });
                }
            }
            Output::Kill { worker, signal } if self.is_thread(worker) => {
                self.retire_thread(worker, signal)
            }
            Output::Kill { worker, signal } => {
                if let Some(process) = self.workers.get(&worker).and_then(|w| w.process.as_ref()) {
                    process.signal(signal);
                }
            }
            Output::ToWorker { worker, bytes } => {
                if let Some(channel) = self
                    .workers
                    .get_mut(&worker)
                    .and_then(|w| w.channel.as_mut())
                {
                    // Written at the end of the pass, together with whatever else it gets.
                    channel.queue(bytes);
                    self.unflushed.push(worker);
                }
            }
            Output::CloseWorker { worker } => self.close_worker(worker),
            Output::Store { token, op } => {
                let submitted = match &self.store {
                    Some(store) => store.submit(token, op),
                    None => Err(NO_STORE.to_owned()),
                };
                if let Err(error) = submitted {
                    self.inputs.push_back(Input::Stored {
                        token,
                        result: Err(StoreError::Unavailable(error)),
                    });
                }
            }
            Output::WatchPath {
                watch,
                path,
                recursive,
            } => {
                if self.fs.is_none() {
                    match FsWatcher::start(self.inbox.clone()) {
                        Ok(fs) => self.fs = Some(fs),
                        Err(e) => {
                            let error =
                                WatchError::Other(format!("cannot start the watch thread: {e}"));
                            self.inputs.push_back(Input::WatchFailed { watch, error });
                            return;
                        }
                    }
                }
                if let Some(fs) = &self.fs {
                    fs.watch(watch, path, recursive);
                }
            }
            Output::Unwatch { watch } => {
                if let Some(fs) = &self.fs {
                    fs.unwatch(watch);
                }
            }
            // Fatal, logs and app events: the embedding program decides (the CLI stops the
            // node on Fatal and exits 1).
            other => {
                if matches!(other, Output::Stopped) {
                    self.stopped = true;
                }
                if (self.observe)(&other) == Control::Shutdown {
                    self.inputs.push_back(Input::Shutdown);
                }
            }
        }
    }

    /// Writes what this pass queued for workers, one system call per worker where the socket
    /// takes it all; the rest waits for writability.
    fn flush_channels(&mut self) {
        let mut workers = std::mem::take(&mut self.unflushed);
        workers.sort_unstable();
        workers.dedup();
        for worker in workers.drain(..) {
            self.flush_channel(worker);
        }
        // Keep the allocation for the next pass.
        self.unflushed = workers;
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let _ = (self.observe)(&Output::Log { level, message });
    }

    fn register_endpoint(&mut self, id: EndpointId, endpoint: ZmqEndpoint) -> io::Result<()> {
        let fd = endpoint.fd().map_err(io::Error::other)?;
        self.readiness.watch(Source::Endpoint(id), fd)?;
        self.endpoints.insert(id, endpoint);
        Ok(())
    }

    fn send(&mut self, endpoint: EndpointId, frames: Vec<Bytes>) {
        let Some(ep) = self.endpoints.get_mut(&endpoint) else {
            return;
        };
        match ep.send(frames) {
            Sent::Done | Sent::Queued => {}
            Sent::Unroutable => {
                let message = format!("{}: a reply's client is gone; dropped", ep.address());
                self.log(LogLevel::Debug, message);
            }
            Sent::Dropped => {
                let message = format!(
                    "{}: clients are not reading; a reply was dropped",
                    ep.address()
                );
                self.log(LogLevel::Warn, message);
            }
        }
    }

    fn spawn(&mut self, spec: &SpawnSpec) -> Result<(), SpawnError> {
        if spec.backend == Backend::Thread {
            return self.spawn_thread(spec);
        }
        let listener = ChannelListener::bind(&spec.socket).map_err(|e| {
            SpawnError::Channel(format!("cannot listen at {}: {e}", spec.socket.display()))
        })?;
        let process = WorkerProcess::spawn(spec)
            .map_err(|e| spawn_io(&e, format!("cannot start {:?}: {e}", spec.argv[0])))?;
        let worker = spec.worker;
        self.readiness
            .watch(Source::Listener(worker), listener.fd())
            .map_err(|e| SpawnError::Other(e.to_string()))?;
        let output = match process.output_fd() {
            Some(fd) => match self.readiness.watch(Source::Output(worker), fd) {
                Ok(()) => true,
                Err(e) => {
                    self.readiness.unwatch(Source::Listener(worker));
                    return Err(SpawnError::Other(e.to_string()));
                }
            },
            None => false,
        };
        self.workers.insert(
            worker,
            WorkerIo {
                listener: Some(listener),
                channel: None,
                process: Some(process),
                output,
                thread: false,
            },
        );
        Ok(())
    }

    /// A native worker on a thread of the node: listens at its socket as for a process, then
    /// starts the thread, which connects to it.
    fn spawn_thread(&mut self, spec: &SpawnSpec) -> Result<(), SpawnError> {
        let listener = ChannelListener::bind(&spec.socket).map_err(|e| {
            SpawnError::Channel(format!("cannot listen at {}: {e}", spec.socket.display()))
        })?;
        let worker = spec.worker;
        self.readiness
            .watch(Source::Listener(worker), listener.fd())
            .map_err(|e| SpawnError::Other(e.to_string()))?;
        if let Err(e) = thread_worker::start(spec, self.inbox.clone()) {
            self.readiness.unwatch(Source::Listener(worker));
            return Err(SpawnError::Other(format!(
                "cannot start a worker thread: {e}"
            )));
        }
        self.workers.insert(
            worker,
            WorkerIo {
                listener: Some(listener),
                thread: true,
                ..WorkerIo::default()
            },
        );
        Ok(())
    }

    fn is_thread(&self, worker: WorkerId) -> bool {
        self.workers.get(&worker).is_some_and(|w| w.thread)
    }

    /// A thread cannot be killed: its worker is retired instead (see [`crate::thread_worker`]).
    /// Its channel closes, it is forgotten, and the core hears it exited; the thread's own
    /// exit report, whenever it comes, is dropped.
    fn retire_thread(&mut self, worker: WorkerId, signal: Signal) {
        self.close_worker(worker);
        self.log(
            LogLevel::Warn,
            format!(
                "{worker}: a worker thread cannot be killed; retired it and left its thread to finish"
            ),
        );
        self.inputs.push_back(Input::WorkerExited {
            worker,
            status: thread_worker::retired_status(signal),
        });
    }

    /// Takes what other threads left. A worker thread's exit comes this way: what it wrote
    /// before is read first (as `reap` does for processes), and the exit of a thread retired
    /// already is dropped, since the core was told then.
    fn take_inbox(&mut self) {
        let mut taken = Vec::new();
        self.inbox.take(&mut taken);
        for input in taken {
            if let Input::WorkerExited { worker, .. } = input {
                if !self.is_thread(worker) {
                    continue;
                }
                self.accept(worker);
                self.read_channel(worker);
            }
            self.inputs.push_back(input);
        }
    }

    fn accept(&mut self, worker: WorkerId) {
        let Some(listener) = self.workers.get(&worker).and_then(|w| w.listener.as_ref()) else {
            return;
        };
        let channel = match listener.accept() {
            Ok(Some(channel)) => channel,
            Ok(None) => return,
            Err(e) => {
                let message = format!("{worker}: accepting its channel failed: {e}");
                self.log(LogLevel::Warn, message);
                return;
            }
        };
        self.readiness.unwatch(Source::Listener(worker));
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.listener = None;
        if self
            .readiness
            .watch(Source::Channel(worker), channel.fd())
            .is_ok()
        {
            w.channel = Some(channel);
            self.inputs.push_back(Input::WorkerConnected { worker });
            // Bytes may already wait: the readiness edge may have come before registration.
            self.read_channel(worker);
        }
    }

    fn read_channel(&mut self, worker: WorkerId) {
        loop {
            let Some(channel) = self
                .workers
                .get_mut(&worker)
                .and_then(|w| w.channel.as_mut())
            else {
                return;
            };
            match channel.read() {
                ReadOutcome::Data(bytes) => {
                    self.inputs.push_back(Input::WorkerData { worker, bytes })
                }
                ReadOutcome::Nothing => return,
                ReadOutcome::Closed => {
                    self.close_channel(worker);
                    self.inputs.push_back(Input::WorkerDisconnected { worker });
                    return;
                }
            }
        }
    }

    fn flush_channel(&mut self, worker: WorkerId) {
        let Some(channel) = self
            .workers
            .get_mut(&worker)
            .and_then(|w| w.channel.as_mut())
        else {
            return;
        };
        let failed = channel.flush().is_err();
        let wants_write = channel.wants_write();
        if failed {
            // The worker is gone; its exit, reaped separately, tells the core.
            self.close_channel(worker);
        } else {
            self.readiness
                .want_write(Source::Channel(worker), wants_write);
        }
    }

    fn close_channel(&mut self, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        if w.channel.is_some() {
            self.readiness.unwatch(Source::Channel(worker));
            w.channel = None;
        }
    }

    fn read_output(&mut self, worker: WorkerId) {
        let Some(process) = self
            .workers
            .get_mut(&worker)
            .and_then(|w| w.process.as_mut())
        else {
            return;
        };
        let mut lines = Vec::new();
        let eof = process.read_output(&mut lines);
        for line in lines {
            self.inputs.push_back(Input::WorkerStderr { worker, line });
        }
        if eof {
            self.close_output(worker);
        }
    }

    /// Stops watching a worker's output, then closes the pipe.
    fn close_output(&mut self, worker: WorkerId) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        if w.output {
            self.readiness.unwatch(Source::Output(worker));
            w.output = false;
        }
        if let Some(process) = w.process.as_mut() {
            process.close_output();
        }
    }

    /// Collects every exited worker: what it wrote before exiting first (its last replies on
    /// the channel, its last output lines), then its exit. SIGCHLD may be handled before the
    /// channel's readiness in the same wake-up; without this, a worker that answered and
    /// exited at once would have its jobs fail as "worker died".
    fn reap(&mut self) {
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for worker in ids {
            let Some(process) = self
                .workers
                .get_mut(&worker)
                .and_then(|w| w.process.as_mut())
            else {
                continue;
            };
            let Ok(Some(status)) = process.try_wait() else {
                continue;
            };
            self.read_channel(worker);
            self.read_output(worker);
            self.close_output(worker);
            if let Some(process) = self.workers.get_mut(&worker).and_then(|w| w.process.take()) {
                // Whatever the worker started dies with it: no orphans.
                process.signal(Signal::Kill);
            }
            self.inputs
                .push_back(Input::WorkerExited { worker, status });
        }
    }

    fn close_worker(&mut self, worker: WorkerId) {
        let Some(w) = self.workers.get(&worker) else {
            return;
        };
        if w.listener.is_some() {
            self.readiness.unwatch(Source::Listener(worker));
        }
        if w.channel.is_some() {
            self.readiness.unwatch(Source::Channel(worker));
        }
        if w.output {
            self.readiness.unwatch(Source::Output(worker));
        }
        // Dropping the process kills and reaps it if it still runs.
        self.workers.remove(&worker);
    }
}
