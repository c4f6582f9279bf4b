//! Carrying out the node's outputs. Each kind of resource has its own short function; the
//! inputs that report a failure back (`Bound`, `SpawnFailed`, `Stored`, `WatchFailed`) are
//! each made in one place.

use bytes::Bytes;
use cocaine_core::ids::WatchId;
use cocaine_core::node::{Input, Output, SocketKind, SpawnSpec, StoreError, StoreOp, WatchError};
use cocaine_core::process::{LogLevel, Signal};
use cocaine_core::{EndpointId, WorkerId};

use super::{Host, Reaction, Runtime};
use crate::fs_watch::FsWatcher;
use crate::store::NO_STORE;
use crate::thread_worker;
use crate::zmq_endpoint::Sent;

impl<R: Runtime> Host<'_, R> {
    pub(super) fn execute(&mut self, output: Output) {
        match output {
            Output::Bind {
                endpoint,
                kind,
                address,
                subscribe,
                max_message,
            } => self.bind(endpoint, kind, &address, &subscribe, max_message),
            Output::SetMaxMessage {
                endpoint,
                max_message,
            } => self.endpoints.set_max_message(endpoint, max_message),
            Output::Unbind { endpoint } => self.unbind(endpoint),
            Output::Send { endpoint, frames } => self.send(endpoint, frames),
            Output::Publish {
                endpoint,
                topic,
                value,
            } => self.send(endpoint, vec![topic, value]),
            Output::ConnSend { conn, bytes } => self.tcp.send(conn, bytes),
            Output::ConnClose { conn } => self.tcp.close(conn),
            Output::ConnReading { conn, on } => {
                self.tcp
                    .set_reading(conn, on, &mut self.runtime, &mut self.inputs)
            }
            Output::Spawn(spec) => self.spawn(&spec),
            Output::PrepareWorkers(spec) => {
                self.workers.forks.prepare(&spec);
                self.log_fork_notes();
            }
            Output::AppStopped { app } => {
                self.workers.forks.forget_app(&app);
                self.log_fork_notes();
                self.observed(Output::AppStopped { app });
            }
            Output::Kill { worker, signal } => self.kill(worker, signal),
            Output::ToWorker { worker, bytes } => self.workers.queue(worker, bytes),
            Output::CloseWorker { worker } => self.workers.close(worker, &mut self.runtime),
            Output::Store { token, op } => self.store(token, op),
            Output::WatchPath {
                watch,
                path,
                recursive,
            } => self.watch_path(watch, path, recursive),
            Output::OpenUdp {
                endpoint,
                address,
                multicast,
            } => {
                let result =
                    self.udp
                        .open(endpoint, &address, multicast.as_ref(), &mut self.runtime);
                self.inputs.push_back(Input::Bound { endpoint, result });
            }
            Output::SendTo {
                endpoint,
                to,
                bytes,
            } => {
                if let Err(message) = self.udp.send(endpoint, to, &bytes) {
                    self.log(LogLevel::Debug, message);
                }
            }
            Output::Unwatch { watch } => {
                if let Some(fs) = &self.fs {
                    fs.unwatch(watch);
                }
            }
            // Fatal, logs and app events: the embedding program decides (the CLI stops the
            // node on Fatal and exits 1).
            other => self.observed(other),
        }
    }

    fn bind(
        &mut self,
        endpoint: EndpointId,
        kind: SocketKind,
        address: &str,
        subscribe: &[Bytes],
        max_message: Option<usize>,
    ) {
        let result = match kind {
            SocketKind::Tcp => self.tcp.listen(endpoint, address, &mut self.runtime),
            _ => self.endpoints.open(
                endpoint,
                kind,
                address,
                subscribe,
                max_message,
                &mut self.runtime,
            ),
        };
        self.inputs.push_back(Input::Bound { endpoint, result });
    }

    fn unbind(&mut self, endpoint: EndpointId) {
        if !self.tcp.unlisten(endpoint, &mut self.runtime)
            && !self.udp.close(endpoint, &mut self.runtime)
        {
            self.endpoints.close(endpoint, &mut self.runtime);
        }
    }

    fn send(&mut self, endpoint: EndpointId, frames: Vec<Bytes>) {
        let (level, message) = match self.endpoints.send(endpoint, frames) {
            None | Some((Sent::Done | Sent::Queued, _)) => return,
            Some((Sent::Unroutable, address)) => (
                LogLevel::Debug,
                format!("{address}: a reply's client is gone; dropped"),
            ),
            Some((Sent::Dropped, address)) => (
                LogLevel::Warn,
                format!("{address}: clients are not reading; a reply was dropped"),
            ),
        };
        self.log(level, message);
    }

    fn spawn(&mut self, spec: &SpawnSpec) {
        if let Err(error) = self.workers.spawn(spec, &self.inbox, &mut self.runtime) {
            self.inputs.push_back(Input::SpawnFailed {
                worker: spec.worker,
                error,
            });
        }
        self.log_fork_notes();
    }

    /// What the fork servers had to say (see [`crate::fork_server`]).
    pub(super) fn log_fork_notes(&mut self) {
        for (level, message) in self.workers.forks.take_notes() {
            self.log(level, message);
        }
    }

    fn kill(&mut self, worker: WorkerId, signal: Signal) {
        if self.workers.is_thread(worker) {
            self.retire_thread(worker, signal);
        } else {
            self.workers.kill(worker, signal);
        }
    }

    /// A thread cannot be killed: its worker is retired instead (see [`crate::thread_worker`]).
    /// Its channel closes, it is forgotten, and the core hears it exited; the thread's own
    /// exit report, whenever it comes, is dropped.
    fn retire_thread(&mut self, worker: WorkerId, signal: Signal) {
        self.workers.close(worker, &mut self.runtime);
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

    fn store(&mut self, token: u64, op: StoreOp) {
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

    fn watch_path(&mut self, watch: WatchId, path: std::path::PathBuf, recursive: bool) {
        if self.fs.is_none() {
            match FsWatcher::start(self.inbox.clone()) {
                Ok(fs) => self.fs = Some(fs),
                Err(e) => {
                    let error = WatchError::Other(format!("cannot start the watch thread: {e}"));
                    self.inputs.push_back(Input::WatchFailed { watch, error });
                    return;
                }
            }
        }
        if let Some(fs) = &self.fs {
            fs.watch(watch, path, recursive);
        }
    }

    fn observed(&mut self, output: Output) {
        if matches!(output, Output::Stopped) {
            self.stopped = true;
        }
        if (self.observe)(&output) == Reaction::Shutdown {
            self.inputs.push_back(Input::Shutdown);
        }
    }
}
