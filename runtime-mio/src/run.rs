//! The loop itself.

use std::collections::VecDeque;
use std::io;
use std::time::{Instant, SystemTime};

use cocaine_core::engine::Backend;
use cocaine_core::node::{Input, Node, Output, SpawnSpec};
use cocaine_core::process::LogLevel;
use cocaine_core::{EndpointId, Now, WorkerId};
use cocaine_os::channel::{ChannelListener, ReadOutcome};
use cocaine_os::process::WorkerProcess;
use cocaine_os::zmq_endpoint::{Sent, ZmqEndpoint};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::io::{Registry, Source, WorkerIo};

const SIGNALS: Token = Token(0);
/// Messages taken from one endpoint per pass, so one busy client cannot starve the rest.
const RECV_BATCH: usize = 256;

/// What the embedding program wants after seeing an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop the node gracefully, as SIGTERM would.
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up the event loop: {0}")]
    Setup(#[source] io::Error),
    #[error("the event loop failed: {0}")]
    Poll(#[source] io::Error),
}

struct Runtime<'a> {
    poll: Poll,
    node: Node,
    context: zmq::Context,
    io: Registry,
    inputs: VecDeque<Input>,
    observe: &'a mut dyn FnMut(&Output) -> Control,
    stopped: bool,
    interrupts: u32,
    /// Workers with bytes queued in this pass.
    unflushed: Vec<WorkerId>,
}

/// Runs `node` (with its first inputs, such as deploys) until it reports `Output::Stopped`
/// after a shutdown. Every output that is not IO (logs, app events) goes to `observe`.
pub fn run(
    node: Node,
    first: Vec<Input>,
    observe: &mut dyn FnMut(&Output) -> Control,
) -> Result<(), RunError> {
    let poll = Poll::new().map_err(RunError::Setup)?;
    let mut signals = Signals::new([SIGCHLD, SIGINT, SIGTERM]).map_err(RunError::Setup)?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(RunError::Setup)?;
    let mut runtime = Runtime {
        poll,
        node,
        context: zmq::Context::new(),
        io: Registry::default(),
        inputs: first.into(),
        observe,
        stopped: false,
        interrupts: 0,
        unflushed: Vec::new(),
    };
    runtime.io.sources.insert(SIGNALS, Source::Signals);
    let mut events = Events::with_capacity(1024);
    loop {
        let busy = runtime.settle();
        if runtime.stopped {
            return Ok(());
        }
        let timeout = if busy {
            Some(std::time::Duration::ZERO)
        } else {
            runtime
                .node
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()))
        };
        match runtime.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RunError::Poll(e)),
        }
        runtime.inputs.push_back(Input::Timeout);
        for event in events.iter() {
            let Some(source) = runtime.io.sources.get(&event.token()).copied() else {
                continue;
            };
            match source {
                Source::Signals => runtime.on_signals(&mut signals),
                Source::Endpoint(_) => {} // drained in `settle`, edge or not
                Source::Listener(worker) => runtime.accept(worker),
                Source::Channel(worker) => {
                    if event.is_readable() || event.is_read_closed() {
                        runtime.read_channel(worker);
                    }
                    if event.is_writable() {
                        runtime.flush_channel(worker);
                    }
                }
                Source::Output(worker) => runtime.read_output(worker),
            }
        }
    }
}

fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

impl Runtime<'_> {
    /// Feeds pending inputs, carries out outputs and drains ready endpoints until nothing is
    /// left to do without waiting. Returns true if an endpoint still has messages (the next
    /// poll must not sleep).
    fn settle(&mut self) -> bool {
        loop {
            let now = now();
            while let Some(input) = self.inputs.pop_front() {
                self.node.handle_input(now, input);
            }
            while let Some(output) = self.node.poll_output() {
                self.execute(output);
            }
            self.flush_channels();
            if self.stopped {
                return false;
            }
            let more = self.drain_endpoints();
            if self.inputs.is_empty() {
                return more;
            }
        }
    }

    /// `ZMQ_FD` only says "something changed": check every endpoint's events after any
    /// activity, receive what waits and retry held-back sends.
    fn drain_endpoints(&mut self) -> bool {
        let mut more = false;
        let mut received = Vec::new();
        for (id, (endpoint, _)) in self.io.endpoints.iter_mut() {
            if endpoint.has_backlog() {
                endpoint.flush();
            }
            if endpoint.readable() {
                received.clear();
                if endpoint.recv_some(RECV_BATCH, &mut received).unwrap_or(0) == RECV_BATCH {
                    more = true;
                }
                for frames in received.drain(..) {
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
                kind,
                address,
                subscribe,
            } => {
                let result = ZmqEndpoint::open(&self.context, kind, &address, &subscribe)
                    .map_err(|e| e.to_string())
                    .and_then(|ep| {
                        self.register_endpoint(endpoint, ep)
                            .map_err(|e| e.to_string())
                    });
                self.inputs.push_back(Input::Bound { endpoint, result });
            }
            Output::Unbind { endpoint } => {
                if let Some((ep, token)) = self.io.endpoints.remove(&endpoint) {
                    self.forget(token, ep.fd().ok());
                }
            }
            Output::Send { endpoint, frames } => self.send(endpoint, frames),
            Output::Publish {
                endpoint,
                topic,
                value,
            } => self.send(endpoint, vec![topic, value]),
            Output::Spawn(spec) => {
                if let Err(error) = self.spawn(&spec) {
                    self.inputs.push_back(Input::SpawnFailed {
                        worker: spec.worker,
                        error,
                    });
                }
            }
            Output::Kill { worker, signal } => {
                if let Some(process) = self
                    .io
                    .workers
                    .get(&worker)
                    .and_then(|w| w.process.as_ref())
                {
                    process.signal(signal);
                }
            }
            Output::ToWorker { worker, bytes } => {
                if let Some((channel, _)) = self
                    .io
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
        for worker in workers {
            self.flush_channel(worker);
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let _ = (self.observe)(&Output::Log { level, message });
    }

    fn register_endpoint(&mut self, id: EndpointId, endpoint: ZmqEndpoint) -> io::Result<()> {
        let fd = endpoint.fd().map_err(io::Error::other)?;
        let token = self.io.token(Source::Endpoint(id));
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        self.io.endpoints.insert(id, (endpoint, token));
        Ok(())
    }

    fn send(&mut self, endpoint: EndpointId, frames: Vec<bytes::Bytes>) {
        let Some((ep, _)) = self.io.endpoints.get_mut(&endpoint) else {
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

    fn spawn(&mut self, spec: &SpawnSpec) -> Result<(), String> {
        if spec.backend == Backend::Thread {
            return Err("the thread backend is not available in this runtime yet".to_owned());
        }
        let listener = ChannelListener::bind(&spec.socket)
            .map_err(|e| format!("cannot listen at {}: {e}", spec.socket.display()))?;
        let process = WorkerProcess::spawn(spec)
            .map_err(|e| format!("cannot start {:?}: {e}", spec.argv[0]))?;
        let worker = spec.worker;
        let listen_token = self.io.token(Source::Listener(worker));
        let output_token = self.io.token(Source::Output(worker));
        let registry = self.poll.registry();
        registry
            .register(
                &mut SourceFd(&listener.fd()),
                listen_token,
                Interest::READABLE,
            )
            .map_err(|e| e.to_string())?;
        if let Some(fd) = process.output_fd() {
            registry
                .register(&mut SourceFd(&fd), output_token, Interest::READABLE)
                .map_err(|e| e.to_string())?;
        }
        self.io.workers.insert(
            worker,
            WorkerIo {
                listener: Some((listener, listen_token)),
                channel: None,
                process: Some(process),
                output: Some(output_token),
            },
        );
        Ok(())
    }

    fn accept(&mut self, worker: WorkerId) {
        let Some(w) = self.io.workers.get_mut(&worker) else {
            return;
        };
        let Some((listener, _)) = w.listener.as_ref() else {
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
        if let Some((listener, token)) = self
            .io
            .workers
            .get_mut(&worker)
            .and_then(|w| w.listener.take())
        {
            self.forget(token, Some(listener.fd()));
        }
        let token = self.io.token(Source::Channel(worker));
        if self
            .poll
            .registry()
            .register(&mut SourceFd(&channel.fd()), token, Interest::READABLE)
            .is_ok()
        {
            if let Some(w) = self.io.workers.get_mut(&worker) {
                w.channel = Some((channel, token));
            }
            self.inputs.push_back(Input::WorkerConnected { worker });
            // Bytes may already wait: the readiness edge may have come before registration.
            self.read_channel(worker);
        }
    }

    fn read_channel(&mut self, worker: WorkerId) {
        loop {
            let Some((channel, _)) = self
                .io
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
        let Some((channel, token)) = self
            .io
            .workers
            .get_mut(&worker)
            .and_then(|w| w.channel.as_mut())
        else {
            return;
        };
        let failed = channel.flush().is_err();
        let interest = if channel.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let (fd, token) = (channel.fd(), *token);
        if failed {
            // The worker is gone; its exit, reaped separately, tells the core.
            self.close_channel(worker);
        } else {
            let _ = self
                .poll
                .registry()
                .reregister(&mut SourceFd(&fd), token, interest);
        }
    }

    fn close_channel(&mut self, worker: WorkerId) {
        if let Some((channel, token)) = self
            .io
            .workers
            .get_mut(&worker)
            .and_then(|w| w.channel.take())
        {
            self.forget(token, Some(channel.fd()));
        }
    }

    fn read_output(&mut self, worker: WorkerId) {
        let Some(w) = self.io.workers.get_mut(&worker) else {
            return;
        };
        let Some(process) = w.process.as_mut() else {
            return;
        };
        let mut lines = Vec::new();
        let eof = process.read_output(&mut lines);
        let fd = process.output_fd();
        for line in lines {
            self.inputs.push_back(Input::WorkerStderr { worker, line });
        }
        if eof {
            if let Some(token) = self
                .io
                .workers
                .get_mut(&worker)
                .and_then(|w| w.output.take())
            {
                self.forget(token, fd);
            }
        }
    }

    fn on_signals(&mut self, signals: &mut Signals) {
        for signal in signals.pending() {
            match signal {
                SIGCHLD => self.reap(),
                _ => {
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
                        self.io.workers.clear();
                        self.stopped = true;
                    }
                }
            }
        }
    }

    /// Collects every exited worker: its remaining output first, then its exit.
    fn reap(&mut self) {
        let ids: Vec<WorkerId> = self.io.workers.keys().copied().collect();
        for worker in ids {
            let Some(process) = self
                .io
                .workers
                .get_mut(&worker)
                .and_then(|w| w.process.as_mut())
            else {
                continue;
            };
            let Ok(Some(status)) = process.try_wait() else {
                continue;
            };
            self.read_output(worker);
            let (token, fd) = match self.io.workers.get_mut(&worker) {
                Some(w) => {
                    let fd = w.process.as_ref().and_then(WorkerProcess::output_fd);
                    if let Some(process) = w.process.take() {
                        // Whatever the worker started dies with it: no orphans.
                        process.signal(cocaine_core::process::Signal::Kill);
                    }
                    (w.output.take(), fd)
                }
                None => (None, None),
            };
            if let Some(token) = token {
                self.forget(token, fd);
            }
            self.inputs
                .push_back(Input::WorkerExited { worker, status });
        }
    }

    fn close_worker(&mut self, worker: WorkerId) {
        let Some(mut w) = self.io.workers.remove(&worker) else {
            return;
        };
        if let Some((listener, token)) = w.listener.take() {
            self.forget(token, Some(listener.fd()));
        }
        if let Some((channel, token)) = w.channel.take() {
            self.forget(token, Some(channel.fd()));
        }
        if let Some(token) = w.output.take() {
            let fd = w.process.as_ref().and_then(WorkerProcess::output_fd);
            self.forget(token, fd);
        }
    }

    fn forget(&mut self, token: Token, fd: Option<std::os::fd::RawFd>) {
        self.io.sources.remove(&token);
        if let Some(fd) = fd {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
    }
}
