//! The host's workers: for each, its listener until it connects, then its channel; its
//! process and output pipe until it has exited and the pipe is drained.

use std::collections::VecDeque;

use bytes::Bytes;
use cocaine_core::engine::Backend;
use cocaine_core::ids::IdMap;
use cocaine_core::node::{Input, SpawnError, SpawnSpec};
use cocaine_core::process::Signal;
use cocaine_core::WorkerId;

use super::runtime::{Runtime, Source};
use crate::boundary::spawn_io;
use crate::channel::{Channel, ChannelListener, ReadOutcome};
use crate::fork_server::{self, ForkServers};
use crate::inbox::Inbox;
use crate::process::WorkerProcess;
use crate::thread_worker;

/// One worker's descriptors.
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

#[derive(Debug, Default)]
pub(super) struct Workers {
    table: IdMap<WorkerId, WorkerIo>,
    /// Workers with bytes queued since the last flush (may repeat).
    unflushed: Vec<WorkerId>,
    /// Python app versions' fork servers.
    pub forks: ForkServers,
}

impl Workers {
    /// Listens at the worker's socket, then starts its process (or thread).
    pub fn spawn(
        &mut self,
        spec: &SpawnSpec,
        inbox: &Inbox,
        runtime: &mut impl Runtime,
    ) -> Result<(), SpawnError> {
        let worker = spec.worker;
        let listener = ChannelListener::bind(&spec.socket).map_err(|e| {
            SpawnError::Channel(format!("cannot listen at {}: {e}", spec.socket.display()))
        })?;
        runtime
            .watch(Source::Listener(worker), listener.fd())
            .map_err(|e| SpawnError::Other(e.to_string()))?;
        let started = if spec.backend == Backend::Thread {
            start_thread(spec, inbox)
        } else {
            let forked = self.forks.fork(spec);
            start_process(spec, forked, runtime)
        };
        match started {
            Ok(mut io) => {
                io.listener = Some(listener);
                self.table.insert(worker, io);
                Ok(())
            }
            Err(error) => {
                runtime.unwatch(Source::Listener(worker));
                Err(error)
            }
        }
    }

    pub fn is_thread(&self, worker: WorkerId) -> bool {
        self.table.get(&worker).is_some_and(|w| w.thread)
    }

    /// Signals a worker process (threads are retired by the host instead).
    pub fn kill(&self, worker: WorkerId, signal: Signal) {
        if let Some(process) = self.table.get(&worker).and_then(|w| w.process.as_ref()) {
            process.signal(signal);
        }
    }

    /// Queues bytes for a worker; written by the next [`Workers::flush`], together with
    /// whatever else it gets in this wake-up.
    pub fn queue(&mut self, worker: WorkerId, bytes: Bytes) {
        if let Some(channel) = self.table.get_mut(&worker).and_then(|w| w.channel.as_mut()) {
            channel.queue(bytes);
            self.unflushed.push(worker);
        }
    }

    /// Takes the worker's connection if it has connected. An error is worth a log line.
    pub fn accept(
        &mut self,
        worker: WorkerId,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) -> Result<(), String> {
        let Some(w) = self.table.get_mut(&worker) else {
            return Ok(());
        };
        let Some(listener) = w.listener.as_ref() else {
            return Ok(());
        };
        let channel = match listener.accept() {
            Ok(Some(channel)) => channel,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("{worker}: accepting its channel failed: {e}")),
        };
        runtime.unwatch(Source::Listener(worker));
        w.listener = None;
        if runtime.watch(Source::Channel(worker), channel.fd()).is_ok() {
            w.channel = Some(channel);
            inputs.push_back(Input::WorkerConnected { worker });
            // Bytes may already wait: the readiness edge may have come before registration.
            self.read_channel(worker, runtime, inputs);
        }
        Ok(())
    }

    /// Reads what the worker's channel holds, until a short read says it is empty.
    pub fn read_channel(
        &mut self,
        worker: WorkerId,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        self.read_channel_until(worker, false, runtime, inputs);
    }

    /// Reads until the channel would block or ends: the peer hung up, and a short read
    /// does not show an end of file that came with the last bytes.
    pub fn read_channel_to_end(
        &mut self,
        worker: WorkerId,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        self.read_channel_until(worker, true, runtime, inputs);
    }

    fn read_channel_until(
        &mut self,
        worker: WorkerId,
        to_end: bool,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        loop {
            let Some(channel) = self.table.get_mut(&worker).and_then(|w| w.channel.as_mut()) else {
                return;
            };
            match channel.read() {
                ReadOutcome::Data { bytes, more } => {
                    inputs.push_back(Input::WorkerData { worker, bytes });
                    if !more && !to_end {
                        return;
                    }
                }
                ReadOutcome::Nothing => return,
                ReadOutcome::Closed => {
                    self.close_channel(worker, runtime);
                    inputs.push_back(Input::WorkerDisconnected { worker });
                    return;
                }
            }
        }
    }

    /// Writes what was queued since the last flush: one system call per worker where the
    /// socket takes it all; the rest waits for writability.
    pub fn flush(&mut self, runtime: &mut impl Runtime) {
        if self.unflushed.is_empty() {
            return;
        }
        let mut workers = std::mem::take(&mut self.unflushed);
        workers.sort_unstable();
        workers.dedup();
        for worker in workers.drain(..) {
            self.flush_one(worker, runtime);
        }
        // Keep the allocation for the next pass.
        self.unflushed = workers;
    }

    pub fn flush_one(&mut self, worker: WorkerId, runtime: &mut impl Runtime) {
        let Some(channel) = self.table.get_mut(&worker).and_then(|w| w.channel.as_mut()) else {
            return;
        };
        if channel.flush().is_err() {
            // The worker is gone; its exit, reaped separately, tells the core.
            self.close_channel(worker, runtime);
        } else {
            runtime.want_write(Source::Channel(worker), channel.wants_write());
        }
    }

    pub fn read_output(
        &mut self,
        worker: WorkerId,
        runtime: &mut impl Runtime,
        inputs: &mut VecDeque<Input>,
    ) {
        let Some(process) = self.table.get_mut(&worker).and_then(|w| w.process.as_mut()) else {
            return;
        };
        let mut lines = Vec::new();
        let eof = process.read_output(&mut lines);
        for line in lines {
            inputs.push_back(Input::WorkerStderr { worker, line });
        }
        if eof {
            self.close_output(worker, runtime);
        }
    }

    /// Collects every exited worker: what it wrote before exiting first (its last replies on
    /// the channel, its last output lines), then its exit. SIGCHLD may come in the same
    /// wake-up as the channel's readiness; without this, a worker that answered and exited
    /// at once would have its jobs fail as "worker died".
    pub fn reap(&mut self, runtime: &mut impl Runtime, inputs: &mut VecDeque<Input>) {
        let exited: Vec<_> = self
            .table
            .iter_mut()
            .filter_map(|(id, w)| {
                let status = w.process.as_mut()?.try_wait().ok()??;
                Some((*id, status))
            })
            .collect();
        self.forks.reap();
        if self.forks.is_subreaper() {
            let (table, forks) = (&self.table, &self.forks);
            fork_server::reap_orphans(|pid| {
                forks.owns(pid)
                    || table
                        .values()
                        .any(|w| w.process.as_ref().is_some_and(|p| p.pid() == pid))
            });
        }
        for (worker, status) in exited {
            self.read_channel_to_end(worker, runtime, inputs);
            self.read_output(worker, runtime, inputs);
            self.close_output(worker, runtime);
            if let Some(process) = self.table.get_mut(&worker).and_then(|w| w.process.take()) {
                // Whatever the worker started dies with it: no orphans.
                process.signal(Signal::Kill);
            }
            inputs.push_back(Input::WorkerExited { worker, status });
        }
    }

    /// Stops watching everything of `worker` and forgets it; a process still running is
    /// killed and reaped as it is dropped.
    pub fn close(&mut self, worker: WorkerId, runtime: &mut impl Runtime) {
        let Some(w) = self.table.remove(&worker) else {
            return;
        };
        if w.listener.is_some() {
            runtime.unwatch(Source::Listener(worker));
        }
        if w.channel.is_some() {
            runtime.unwatch(Source::Channel(worker));
        }
        if w.output {
            runtime.unwatch(Source::Output(worker));
        }
    }

    pub fn close_all(&mut self, runtime: &mut impl Runtime) {
        let ids: Vec<WorkerId> = self.table.keys().copied().collect();
        for worker in ids {
            self.close(worker, runtime);
        }
        self.forks.close_all();
    }

    fn close_channel(&mut self, worker: WorkerId, runtime: &mut impl Runtime) {
        let Some(w) = self.table.get_mut(&worker) else {
            return;
        };
        if let Some(channel) = w.channel.take() {
            // Unwatched while its descriptor is still open, then closed.
            runtime.unwatch(Source::Channel(worker));
            drop(channel);
        }
    }

    /// Stops watching a worker's output, then closes the pipe.
    fn close_output(&mut self, worker: WorkerId, runtime: &mut impl Runtime) {
        let Some(w) = self.table.get_mut(&worker) else {
            return;
        };
        if w.output {
            runtime.unwatch(Source::Output(worker));
            w.output = false;
        }
        if let Some(process) = w.process.as_mut() {
            process.close_output();
        }
    }
}

/// Starts the worker's process, unless its fork server already has (`forked`).
fn start_process(
    spec: &SpawnSpec,
    forked: Option<WorkerProcess>,
    runtime: &mut impl Runtime,
) -> Result<WorkerIo, SpawnError> {
    let process = match forked {
        Some(process) => process,
        None => WorkerProcess::spawn(spec)
            .map_err(|e| spawn_io(&e, format!("cannot start {:?}: {e}", spec.argv[0])))?,
    };
    let output = match process.output_fd() {
        Some(fd) => {
            runtime
                .watch(Source::Output(spec.worker), fd)
                .map_err(|e| SpawnError::Other(e.to_string()))?;
            true
        }
        None => false,
    };
    Ok(WorkerIo {
        process: Some(process),
        output,
        ..WorkerIo::default()
    })
}

/// A native worker on a thread of the node: it connects to the socket as a process would.
fn start_thread(spec: &SpawnSpec, inbox: &Inbox) -> Result<WorkerIo, SpawnError> {
    thread_worker::start(spec, inbox.clone())
        .map_err(|e| SpawnError::Other(format!("cannot start a worker thread: {e}")))?;
    Ok(WorkerIo {
        thread: true,
        ..WorkerIo::default()
    })
}
