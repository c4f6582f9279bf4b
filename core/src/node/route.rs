//! Where a job's reply goes, and taking it there.

use std::collections::VecDeque;

use std::sync::Arc;

use bytes::Bytes;

use super::app::App;
use super::io::Output;
use super::native_server::Sessions;
use super::{native_server, publication, zmq_server, NodeConfig};
use crate::engine::ReplyEvent;
use crate::ids::{ConnId, EndpointId};
use crate::time::Now;

/// The most native-protocol messages one ZeroMQ message carries to a client.
const MAX_MESSAGES_PER_SEND: usize = 64;

/// A job's reply token: the engine hands it back with every reply event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A native-protocol client: its ROUTER identity, whether it framed its messages with an
    /// empty delimiter (echoed back), and its request's sid.
    Native {
        endpoint: EndpointId,
        peer: Bytes,
        delimiter: bool,
        sid: u64,
    },
    /// A zeromq-server client, by its routing frames.
    Server {
        endpoint: EndpointId,
        envelope: Vec<Bytes>,
    },
    /// A raw-server connection, by the request's place among the connection's requests
    /// (replies are written in that order).
    Raw { conn: ConnId, seq: u64 },
    /// The app's pubsub, as this task's publication.
    Publish { task: usize },
    /// The app's pubsub, as the publication of a manual-scheduler job, which leaves the store
    /// once this is out.
    Scheduled { task: usize, id: Arc<str> },
}

impl App {
    pub(super) fn deliver(
        &mut self,
        now: Now,
        config: &NodeConfig,
        sessions: &mut Sessions,
        out: &mut VecDeque<Output>,
        route: Route,
        event: ReplyEvent,
    ) {
        match route {
            Route::Native {
                endpoint,
                peer,
                delimiter,
                sid,
            } => {
                if matches!(event, ReplyEvent::Head(_)) {
                    return; // an HTTP reply head: the native protocol has no place for it
                }
                if event.is_terminal() {
                    sessions.close(endpoint, &peer, sid);
                }
                let message = native_server::reply_message(sid, &event);
                // Replies to one client that follow each other share one ZeroMQ message
                // (the protocol allows several per message): fewer sends, same order.
                if let Some(Output::Send {
                    endpoint: e,
                    frames,
                }) = out.back_mut()
                {
                    let header = if delimiter { 2 } else { 1 };
                    let same_client = *e == endpoint
                        && frames.first() == Some(&peer)
                        && (frames.len() > header)
                        && (!delimiter || frames.get(1).is_some_and(|f| f.is_empty()))
                        && (delimiter || frames.get(1).is_some_and(|f| !f.is_empty()));
                    if same_client && frames.len() < header + MAX_MESSAGES_PER_SEND {
                        frames.push(message);
                        return;
                    }
                }
                out.push_back(Output::Send {
                    endpoint,
                    frames: native_server::reply_frames(peer, delimiter, message),
                });
            }
            Route::Server { endpoint, envelope } => {
                if let Some(frames) = zmq_server::reply_frames(envelope, event) {
                    out.push_back(Output::Send { endpoint, frames });
                }
            }
            // The node holds the connections (they outlive a redeploy); it writes these.
            Route::Raw { conn, seq } => self.raw_replies.push((conn, seq, event)),
            Route::Publish { task } => self.publish_reply(now, config, out, task, event),
            Route::Scheduled { task, id } => {
                let terminal = event.is_terminal();
                self.publish_reply(now, config, out, task, event);
                if terminal {
                    self.finished_schedules.push(id);
                }
            }
        }
    }

    /// Publishes a job's outcome as the task's publication (an error as the engine's).
    fn publish_reply(
        &mut self,
        now: Now,
        config: &NodeConfig,
        out: &mut VecDeque<Output>,
        task: usize,
        event: ReplyEvent,
    ) {
        let source = self.tasks.get(task).map(|t| t.name.clone());
        let source = source.as_deref().unwrap_or("engine").to_owned();
        let terminal = event.is_terminal();
        match event {
            ReplyEvent::Collected(chunks) => {
                for (field, value) in publication::fields_of_reply(&chunks) {
                    self.publish(now, config, out, &source, &field, &value);
                }
            }
            ReplyEvent::Error(failure) => {
                let value = serde_json::json!({
                    "code": failure.code, "message": failure.message, "task": source,
                });
                self.publish(now, config, out, "engine", "error", &value);
            }
            ReplyEvent::Chunk(_) | ReplyEvent::End | ReplyEvent::Head(_) => {}
        }
        if terminal {
            self.publication_ended(now, task);
            self.cron_job_ended(now, task);
        }
    }
}
