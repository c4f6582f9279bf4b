//! raw-server (PROTOCOL.md §5): plain TCP connections whose requests are lines, length
//! frames, or the whole connection (`stream`).
//!
//! The node, not an app, holds the connections: during a redeploy a shared listener changes
//! hands, and a connection's earlier requests may still run on the old version while its
//! later ones go to the new one. Each connection keeps the framing and limits it was
//! accepted with. Replies leave in the order of the requests: a reply that is ready before
//! an earlier one waits for it. A connection whose client leaves (end of file in `line` and
//! `length`, a reset in any framing) has its jobs cancelled and gets nothing more.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use super::route::Route;
use super::{EndpointOwner, Node, Output};
use crate::codec::raw::{self, RequestDecoder};
use crate::engine::{JobId, JobPolicy, JobRequest, Origin, ReplyEvent, ReplyMode};
use crate::ids::{AppId, ConnId, EndpointId};
use crate::manifest::{Framing, TaskKind, DEFAULT_REPLY_LIMIT};
use crate::process::LogLevel;
use crate::status::{self, Failure};
use crate::time::Now;

/// Every open raw connection, by the runtime's id.
#[derive(Debug, Default)]
pub(super) struct Conns {
    conns: HashMap<ConnId, Conn>,
}

#[derive(Debug)]
struct Conn {
    endpoint: EndpointId,
    framing: Framing,
    /// Cuts requests out of `line` and `length` streams; `None` for `stream`.
    decoder: Option<RequestDecoder>,
    /// `stream`: the most request bytes the connection may send.
    max_message: usize,
    /// `stream`: request bytes so far.
    received: usize,
    peer: String,
    /// The next request's place.
    next_seq: u64,
    /// The place of the next reply to write.
    next_write: u64,
    /// Requests without a written reply, by place: the job while it runs, the reply once
    /// there is one.
    pending: BTreeMap<u64, Pending>,
    /// No more requests are taken; the connection closes once `pending` is written.
    closing: bool,
}

#[derive(Debug, Default)]
struct Pending {
    job: Option<(AppId, JobId)>,
    reply: Option<Bytes>,
}

impl Conns {
    /// A request's job moved to another version's engine (a redeploy).
    pub fn moved(&mut self, conn: ConnId, seq: u64, to: (AppId, JobId)) {
        if let Some(p) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.pending.get_mut(&seq))
        {
            if p.job.is_some() {
                p.job = Some(to);
            }
        }
    }

    /// Connections accepted on `endpoint`.
    fn on(&self, endpoint: EndpointId) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.endpoint == endpoint)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

impl Node {
    pub(super) fn raw_accepted(
        &mut self,
        now: Now,
        endpoint: EndpointId,
        conn: ConnId,
        peer: String,
    ) {
        let owner = self.endpoints.get(&endpoint).copied();
        let kind = owner.and_then(|o| {
            let app = self.apps.get(&o.app)?;
            app.manifest.tasks.get(o.task?).map(|t| t.kind.clone())
        });
        let (
            Some(owner),
            Some(TaskKind::RawServer {
                framing,
                max_line,
                max_message,
                ..
            }),
        ) = (owner, kind)
        else {
            // The endpoint went away as the client came.
            self.out.push_back(Output::ConnClose { conn });
            return;
        };
        let limit = match framing {
            Framing::Line => max_line,
            Framing::Length | Framing::Stream => max_message,
        };
        self.raw.conns.insert(
            conn,
            Conn {
                endpoint,
                framing,
                decoder: RequestDecoder::new(framing, limit),
                max_message,
                received: 0,
                peer,
                next_seq: 0,
                next_write: 0,
                pending: BTreeMap::new(),
                closing: false,
            },
        );
        if framing == Framing::Stream {
            // The connection is the job: its bytes stream in as they come.
            match self.raw_submit(now, owner, conn, 0, None) {
                Ok(job) => {
                    if let Some(c) = self.raw.conns.get_mut(&conn) {
                        c.next_seq = 1;
                        c.pending.insert(
                            0,
                            Pending {
                                job: Some(job),
                                reply: None,
                            },
                        );
                    }
                }
                Err(failure) => {
                    self.log(
                        LogLevel::Debug,
                        format!("raw connection {conn} closed: {failure}"),
                    );
                    self.raw_close(conn);
                }
            }
        }
    }

    pub(super) fn raw_data(&mut self, now: Now, conn: ConnId, bytes: Bytes) {
        let Some(c) = self.raw.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        let endpoint = c.endpoint;
        let Some(decoder) = c.decoder.as_mut() else {
            self.raw_stream_data(now, conn, bytes);
            return;
        };
        decoder.push(&bytes);
        let max_open = self.config.max_open_per_peer;
        loop {
            let Some(c) = self.raw.conns.get_mut(&conn) else {
                return;
            };
            let Some(decoder) = c.decoder.as_mut() else {
                return;
            };
            let framing = c.framing;
            let seq = c.next_seq;
            let next = decoder.next_request();
            let request = match next {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(e) => {
                    // Framing is lost: answer in turn, then close.
                    let reply = raw::error(framing, status::TOO_LARGE, &e.to_string());
                    c.next_seq += 1;
                    c.closing = true;
                    c.pending.insert(seq, ready(reply));
                    break;
                }
            };
            c.next_seq += 1;
            if c.pending.len() >= max_open {
                // A client that sends and never reads would make the node hold its replies
                // without end.
                let message = format!(
                    "too many requests wait for replies on this connection (limit {max_open})"
                );
                c.pending.insert(
                    seq,
                    ready(raw::error(framing, status::UNAVAILABLE, &message)),
                );
                c.closing = true;
                break;
            }
            let Some(owner) = self.endpoints.get(&endpoint).copied() else {
                break;
            };
            let pending = match self.raw_submit(now, owner, conn, seq, Some(request)) {
                Ok(job) => Pending {
                    job: Some(job),
                    reply: None,
                },
                Err(f) => ready(raw::error(framing, f.code, &f.message)),
            };
            if let Some(c) = self.raw.conns.get_mut(&conn) {
                c.pending.insert(seq, pending);
            }
        }
        self.raw_flush(conn);
    }

    fn raw_stream_data(&mut self, now: Now, conn: ConnId, bytes: Bytes) {
        let Some(c) = self.raw.conns.get_mut(&conn) else {
            return;
        };
        c.received = c.received.saturating_add(bytes.len());
        let job = c.pending.get(&0).and_then(|p| p.job);
        if c.received > c.max_message {
            let message = format!(
                "raw connection {conn} closed: its request is over the limit of {} bytes",
                c.max_message
            );
            self.log(LogLevel::Debug, message);
            self.raw_forget(now, conn);
            self.out.push_back(Output::ConnClose { conn });
            return;
        }
        if let Some((app, job)) = job {
            if let Some(app) = self.apps.get_mut(&app) {
                app.engine.push_chunk(job, bytes);
            }
        }
    }

    /// The client sends no more: in `stream` that ends the request; otherwise the client
    /// has left.
    pub(super) fn raw_eof(&mut self, now: Now, conn: ConnId) {
        let Some(c) = self.raw.conns.get(&conn) else {
            return;
        };
        if c.framing == Framing::Stream {
            if let Some((app, job)) = c.pending.get(&0).and_then(|p| p.job) {
                if let Some(app) = self.apps.get_mut(&app) {
                    app.engine.end_request(job);
                }
            }
            return;
        }
        self.raw_forget(now, conn);
        self.out.push_back(Output::ConnClose { conn });
    }

    /// The connection is gone: its jobs are cancelled.
    pub(super) fn raw_closed(&mut self, now: Now, conn: ConnId) {
        self.raw_forget(now, conn);
    }

    /// An endpoint closes: so do the connections accepted on it.
    pub(super) fn raw_endpoint_closed(&mut self, now: Now, endpoint: EndpointId) {
        for conn in self.raw.on(endpoint) {
            self.raw_forget(now, conn);
            self.out.push_back(Output::ConnClose { conn });
        }
    }

    /// A job's reply event for a connection.
    pub(super) fn raw_deliver(&mut self, conn: ConnId, seq: u64, event: ReplyEvent) {
        let Some(c) = self.raw.conns.get_mut(&conn) else {
            return; // the client left; nothing is written after
        };
        if c.framing == Framing::Stream {
            match event {
                ReplyEvent::Chunk(data) => {
                    self.out.push_back(Output::ConnSend { conn, bytes: data });
                }
                ReplyEvent::End => self.raw_close(conn),
                ReplyEvent::Head(_) => {} // an HTTP reply head: raw servers have none
                ReplyEvent::Collected(chunks) => {
                    let bytes = raw::reply(Framing::Stream, &chunks);
                    self.out.push_back(Output::ConnSend { conn, bytes });
                    self.raw_close(conn);
                }
                ReplyEvent::Error(failure) => {
                    self.log(
                        LogLevel::Debug,
                        format!("raw connection {conn} closed after an error: {failure}"),
                    );
                    self.raw_close(conn);
                }
            }
            return;
        }
        let reply = match event {
            ReplyEvent::Chunk(_) | ReplyEvent::Head(_) => return, // collected jobs send none
            ReplyEvent::Collected(chunks) => raw::reply(c.framing, &chunks),
            ReplyEvent::End => raw::reply(c.framing, &[]),
            ReplyEvent::Error(f) => raw::error(c.framing, f.code, &f.message),
        };
        if let Some(p) = c.pending.get_mut(&seq) {
            p.job = None;
            p.reply = Some(reply);
        }
        self.raw_flush(conn);
    }

    fn raw_submit(
        &mut self,
        now: Now,
        owner: EndpointOwner,
        conn: ConnId,
        seq: u64,
        body: Option<Bytes>,
    ) -> Result<(AppId, JobId), Failure> {
        let unavailable = || Failure::new(status::UNAVAILABLE, "app is not running");
        let task = owner.task.ok_or_else(unavailable)?;
        let peer = self.raw.conns.get(&conn).map(|c| c.peer.clone());
        let app = self.apps.get_mut(&owner.app).ok_or_else(unavailable)?;
        let event: Arc<str> = app.tasks.get(task).ok_or_else(unavailable)?.name.clone();
        let mode = match body {
            Some(_) => ReplyMode::Collect {
                limit: DEFAULT_REPLY_LIMIT,
            },
            None => ReplyMode::Stream,
        };
        let request = JobRequest {
            task,
            event,
            policy: JobPolicy::default(),
            reply: Route::Raw { conn, seq },
            mode,
            origin: peer.map(|peer| {
                Box::new(Origin {
                    user: None,
                    peer: Some(peer),
                    http: None,
                })
            }),
            body: body.map(|b| vec![b]),
        };
        let job = app.engine.submit(now.mono, request)?;
        Ok((owner.app, job))
    }

    /// Writes the replies that are next in order; closes a closing connection once all are.
    fn raw_flush(&mut self, conn: ConnId) {
        let Some(c) = self.raw.conns.get_mut(&conn) else {
            return;
        };
        while let Some(mut entry) = c.pending.first_entry() {
            if *entry.key() != c.next_write {
                break;
            }
            let Some(bytes) = entry.get_mut().reply.take() else {
                break;
            };
            entry.remove();
            c.next_write += 1;
            self.out.push_back(Output::ConnSend { conn, bytes });
        }
        if c.closing && c.pending.is_empty() {
            self.raw_close(conn);
        }
    }

    /// Forgets a connection whose jobs are all done, and closes it.
    fn raw_close(&mut self, conn: ConnId) {
        self.raw.conns.remove(&conn);
        self.out.push_back(Output::ConnClose { conn });
    }

    /// Forgets a connection, cancelling its jobs (their replies then find no connection).
    fn raw_forget(&mut self, now: Now, conn: ConnId) {
        let Some(c) = self.raw.conns.remove(&conn) else {
            return;
        };
        let mut cancelled = 0;
        for (app, job) in c.pending.values().filter_map(|p| p.job) {
            if let Some(app) = self.apps.get_mut(&app) {
                if app.engine.is_open(job) {
                    app.engine.cancel(now.mono, job);
                    cancelled += 1;
                }
            }
        }
        if cancelled > 0 {
            self.log(
                LogLevel::Debug,
                format!(
                    "raw connection {conn} ({}): {cancelled} job(s) cancelled",
                    c.peer
                ),
            );
        }
    }
}

fn ready(reply: Bytes) -> Pending {
    Pending {
        job: None,
        reply: Some(reply),
    }
}
