//! Bytes from a worker: framing, decoding, and what each message means.

use std::time::Instant;

use super::output::{EngineEvent, ReplyEvent, WorkerEvent};
use super::worker::{Departure, WorkerState};
use super::{Engine, EngineTimer, JobId};
use crate::codec::worker::{WorkerMessage, PROTOCOL_VERSION};
use crate::ids::WorkerId;
use crate::process::LogLevel;
use crate::status::Failure;
use crate::time::after;

/// How many undecodable messages from one worker are logged before it goes quiet.
const BAD_MESSAGE_LOG_LIMIT: u32 = 10;

impl<R: Clone> Engine<R> {
    /// Bytes the worker wrote to its channel, in any split.
    pub fn worker_data(&mut self, now: Instant, worker: WorkerId, bytes: &[u8]) {
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        if w.state == WorkerState::Killed {
            return;
        }
        w.decoder.push(bytes);
        loop {
            let Some(w) = self.workers.get_mut(&worker) else {
                return;
            };
            if w.state == WorkerState::Killed {
                return;
            }
            let frame = match w.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    // The stream's framing is lost: nothing after this can be trusted.
                    self.kill(
                        now,
                        worker,
                        Departure::Fault(format!("broke the channel: {e}")),
                    );
                    return;
                }
            };
            w.last_heard = now;
            match WorkerMessage::decode_bytes(&frame) {
                Ok(message) => self.worker_message(now, worker, message),
                Err(e) => {
                    w.bad_messages += 1;
                    if w.bad_messages <= BAD_MESSAGE_LOG_LIMIT {
                        let message = format!("{}/{worker}: dropped a bad message: {e}", self.app);
                        self.log(LogLevel::Warn, message);
                    }
                }
            }
        }
    }

    fn worker_message(&mut self, now: Instant, worker: WorkerId, message: WorkerMessage) {
        let Some(w) = self.workers.get(&worker) else {
            return;
        };
        if w.state == WorkerState::Starting {
            match message {
                WorkerMessage::Handshake {
                    worker_id,
                    version,
                    pid,
                } => self.handshake(now, worker, &worker_id, version, pid),
                other => {
                    let reason = format!("spoke before its handshake ({})", kind_name(&other));
                    self.kill(now, worker, Departure::Fault(reason));
                }
            }
            return;
        }
        match message {
            WorkerMessage::Heartbeat => {}
            WorkerMessage::Chunk { sid, data } => {
                self.reply_from_worker(now, worker, JobId::from_u64(sid), ReplyEvent::Chunk(data))
            }
            WorkerMessage::Choke { sid } => {
                self.reply_from_worker(now, worker, JobId::from_u64(sid), ReplyEvent::End)
            }
            WorkerMessage::Head { sid, head } => {
                let event = ReplyEvent::Head(head);
                self.reply_from_worker(now, worker, JobId::from_u64(sid), event)
            }
            WorkerMessage::Error { sid, code, message } => {
                let event = ReplyEvent::Error(Failure::new(code, message));
                self.reply_from_worker(now, worker, JobId::from_u64(sid), event)
            }
            WorkerMessage::Terminate { reason } => {
                let message = format!("{}/{worker}: is leaving: {reason}", self.app);
                self.log(LogLevel::Debug, message);
                self.retire(now, worker, "acknowledged", false);
            }
            other @ (WorkerMessage::Handshake { .. }
            | WorkerMessage::Invoke { .. }
            | WorkerMessage::Cancel { .. }) => {
                let message = format!(
                    "{}/{worker}: ignored an unexpected {} message",
                    self.app,
                    kind_name(&other)
                );
                self.log(LogLevel::Warn, message);
            }
        }
    }

    fn handshake(&mut self, now: Instant, worker: WorkerId, claimed: &str, version: u32, pid: u32) {
        if claimed != worker.to_string() {
            let reason = format!("handshake names worker {claimed:?}, expected {worker}");
            self.kill(now, worker, Departure::Fault(reason));
            return;
        }
        if version != PROTOCOL_VERSION {
            let reason = format!("speaks protocol version {version}, expected {PROTOCOL_VERSION}");
            self.kill(now, worker, Departure::Fault(reason));
            return;
        }
        let before = self.standing(worker);
        let Some(w) = self.workers.get_mut(&worker) else {
            return;
        };
        w.state = WorkerState::Ready;
        w.pid = Some(pid);
        self.ever_ready = true;
        self.timers.cancel_slot(&mut w.liveness);
        let config = &self.config;
        w.liveness = Some(self.timers.arm(
            after(now, config.heartbeat_timeout),
            EngineTimer::Liveness(worker),
        ));
        w.heartbeat = Some(self.timers.arm(
            after(now, config.heartbeat_interval),
            EngineTimer::Heartbeat(worker),
        ));
        let departing = w.departure.is_some();
        self.reindex(worker, before);
        self.log_held_stderr(worker);
        self.publish(EngineEvent::Worker {
            id: worker,
            pid: Some(pid),
            event: WorkerEvent::Ready,
            status: None,
            stderr: None,
        });
        if departing {
            // Retired while starting (app broken or stopping): it goes as soon as it can hear.
            self.retire(now, worker, "no longer needed", true);
            return;
        }
        self.worker_became_idle(now, worker);
        self.dispatch(now);
        self.rebalance(now);
    }
}

fn kind_name(message: &WorkerMessage) -> &'static str {
    match message {
        WorkerMessage::Handshake { .. } => "handshake",
        WorkerMessage::Heartbeat => "heartbeat",
        WorkerMessage::Invoke { .. } => "invoke",
        WorkerMessage::Chunk { .. } => "chunk",
        WorkerMessage::Choke { .. } => "choke",
        WorkerMessage::Error { .. } => "error",
        WorkerMessage::Cancel { .. } => "cancel",
        WorkerMessage::Terminate { .. } => "terminate",
        WorkerMessage::Head { .. } => "head",
    }
}
