//! http-server: HTTP/1.0 and 1.1 on a TCP listener (`docs/http.md`). The protocol lives in
//! `crate::http`; this driver only moves bytes between connections and [`HttpConn`]s, and
//! requests and replies between the connections and the app's engine.
//!
//! Each request is a streaming job (`ReplyMode::Stream`): its body's pieces are pushed as they
//! arrive, its reply events go back to its connection, which writes responses in request
//! order. A redeploy hands the connections over: they stay open, read new requests with the
//! new version's settings, and earlier requests still running on the old version answer in
//! their turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::driver::{Binding, Cx, Driver, DriverInput, Handover, Job, JobRef};
use super::io::{Output, SocketKind};
use crate::engine::config::DEFAULT_MAX_MESSAGE;
use crate::engine::{JobPolicy, ReplyEvent, ReplyMode};
use crate::http::config::KEYS;
use crate::http::{HttpConfig, HttpConn, HttpEvent, Request};
use crate::ids::{ConnId, EndpointId, IdMap};
use crate::manifest::keys::{endpoint, Ctx, Obj, Problems, Role};
use crate::manifest::{OtherTask, Task, TaskKind};
use crate::process::LogLevel;
use crate::timers::TimerHandle;

/// The manifest `type` of this driver's tasks.
const TYPE: &str = "http-server";
/// The driver's own key besides the HTTP layer's: each request's job timeout (ms; 504 when
/// it passes), none by default.
const TIMEOUT_KEY: &str = "timeout";

/// One client connection.
#[derive(Debug)]
struct Conn {
    endpoint: EndpointId,
    peer: String,
    http: HttpConn,
    /// Request place -> its job, while the job runs.
    jobs: IdMap<u64, JobRef>,
    /// The header-timeout timer, its token, and the instant it is armed for.
    timer: Option<TimerHandle>,
    timer_token: u64,
    armed_for: Option<Instant>,
    /// Reading is paused (`Output::ConnReading`) while the pipeline is full.
    paused: bool,
}

/// The connections a driver holds, its jobs' tokens (-> connection, request place) and its
/// timers' tokens (-> connection).
#[derive(Debug, Default)]
struct Conns {
    conns: IdMap<ConnId, Conn>,
    tokens: IdMap<u64, (ConnId, u64)>,
    timers: IdMap<u64, ConnId>,
}

#[derive(Debug)]
pub(super) struct HttpServer {
    endpoint: String,
    config: Arc<HttpConfig>,
    /// Every request's job policy (its `timeout`).
    policy: JobPolicy,
    held: Conns,
}

/// http-server: `endpoint` (bound, TCP only), the HTTP keys (`routes`, `max-header`,
/// `max-body`, `header-timeout`), read by `HttpConfig::from_task` and kept, defaults filled
/// in, as the task's settings, and `timeout`.
pub(crate) fn parse(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> TaskKind {
    let endpoint = endpoint(o, Role::Bind, p);
    if !endpoint.is_empty() && !endpoint.starts_with("tcp://") {
        let message = "an http-server listens on TCP only: use tcp://HOST:PORT";
        p.add(o.at("endpoint"), message);
    }
    let mut given = Map::new();
    for key in KEYS {
        if let Some(v) = o.get(key) {
            given.insert((*key).to_owned(), v.clone());
        }
    }
    let timeout = o.ms("timeout", p);
    let mut settings = match HttpConfig::from_task(&Value::Object(given), ctx.max_message) {
        Ok(config) => settings_of(&config),
        Err(problems) => {
            for problem in problems {
                p.add(o.at(&problem.key), problem.message);
            }
            Map::new()
        }
    };
    if let Some(t) = timeout {
        settings.insert(TIMEOUT_KEY.to_owned(), Value::from(millis(t)));
    }
    TaskKind::Other(OtherTask {
        type_name: TYPE,
        endpoint: Some((endpoint, Role::Bind)),
        max_message: None,
        settings,
    })
}

/// The settings as keys, every default written out (what `from_task` reads back).
fn settings_of(config: &HttpConfig) -> Map<String, Value> {
    let mut settings = Map::new();
    if let Some(routes) = &config.routes {
        let routes = routes.iter().map(|(prefix, event)| (prefix.clone(), Value::from(&**event)));
        settings.insert("routes".to_owned(), Value::Object(routes.collect()));
    }
    settings.insert("max-header".to_owned(), Value::from(config.max_header));
    settings.insert("max-body".to_owned(), Value::from(config.max_body));
    let timeout = millis(config.header_timeout);
    settings.insert("header-timeout".to_owned(), Value::from(timeout));
    settings
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn make(task: &Task) -> Option<Box<dyn Driver>> {
    let TaskKind::Other(other) = &task.kind else {
        return None;
    };
    let (endpoint, _) = other.endpoint.as_ref().filter(|_| other.type_name == TYPE)?;
    let settings = Value::Object(other.settings.clone());
    let config = HttpConfig::from_task(&settings, DEFAULT_MAX_MESSAGE).ok()?;
    let timeout = (other.settings.get(TIMEOUT_KEY))
        .and_then(Value::as_u64)
        .map(Duration::from_millis);
    Some(Box::new(HttpServer {
        endpoint: endpoint.clone(),
        config: Arc::new(config),
        policy: JobPolicy {
            timeout,
            ..JobPolicy::default()
        },
        held: Conns::default(),
    }))
}

impl Driver for HttpServer {
    fn binding(&self) -> Option<Binding> {
        Some(Binding::new(SocketKind::Tcp, &self.endpoint))
    }

    fn handle(&mut self, cx: &mut Cx<'_>, input: DriverInput) {
        match input {
            DriverInput::Accepted {
                endpoint,
                conn,
                peer,
            } => self.accepted(cx, endpoint, conn, peer),
            DriverInput::ConnData { conn, bytes } => {
                let now = cx.now.mono;
                self.step(cx, conn, |http| http.feed(&bytes, now));
            }
            DriverInput::ConnEof { conn } => self.step(cx, conn, HttpConn::eof),
            // The socket is gone: cancel the jobs, write nothing.
            DriverInput::ConnClosed { conn } => self.forget(cx, conn),
            DriverInput::Timer { token } => {
                let Some(conn) = self.held.timers.get(&token).copied() else {
                    return;
                };
                if let Some(c) = self.held.conns.get_mut(&conn) {
                    c.timer = None;
                    c.armed_for = None;
                }
                let now = cx.now.mono;
                self.step(cx, conn, |http| http.timeout(now));
            }
            DriverInput::Unbound { endpoint } => {
                let gone = self.conns_where(|c| c.endpoint == endpoint);
                for conn in gone {
                    self.forget(cx, conn);
                    cx.close_conn(conn);
                }
            }
            _ => {}
        }
    }

    fn reply(&mut self, cx: &mut Cx<'_>, token: u64, event: ReplyEvent) {
        let Some((conn, seq)) = self.held.tokens.get(&token).copied() else {
            return; // the client left; nothing is written after
        };
        if event.is_terminal() {
            self.held.tokens.remove(&token);
            if let Some(c) = self.held.conns.get_mut(&conn) {
                c.jobs.remove(&seq);
            }
        }
        let now = cx.now.mono;
        self.step(cx, conn, |http| match event {
            ReplyEvent::Head(head) => http.reply_head(seq, head, now),
            ReplyEvent::Chunk(bytes) => http.reply_chunk(seq, bytes, now),
            ReplyEvent::End => http.reply_end(seq, now),
            // Jobs here stream their replies; a collected one is its chunks then its end.
            ReplyEvent::Collected(chunks) => {
                let mut events = Vec::new();
                for bytes in chunks {
                    events.extend(http.reply_chunk(seq, bytes, now));
                }
                events.extend(http.reply_end(seq, now));
                events
            }
            ReplyEvent::Error(f) => http.reply_error(seq, f.code, &f.message, now),
        });
    }

    /// Connections move, open, with their jobs' tokens; their timers are re-armed on the new
    /// version.
    fn hand_over(&mut self, cx: &mut Cx<'_>) -> Option<Handover> {
        for c in self.held.conns.values_mut() {
            cx.cancel_timer(&mut c.timer);
            c.armed_for = None;
        }
        Some(Box::new(std::mem::take(&mut self.held)))
    }

    fn take_over(&mut self, cx: &mut Cx<'_>, from: Handover) {
        let Ok(held) = from.downcast::<Conns>() else {
            return;
        };
        let task = cx.task_name();
        let moved: Vec<ConnId> = held.conns.keys().copied().collect();
        self.held.conns.extend(held.conns);
        self.held.tokens.extend(held.tokens);
        self.held.timers.extend(held.timers);
        for conn in moved {
            // Ours from now on, also once the old version is gone.
            cx.own_conn(conn);
            if let Some(c) = self.held.conns.get_mut(&conn) {
                c.http.reconfigure(self.config.clone(), task.clone());
            }
            self.sync(cx, conn);
        }
    }

    fn job_moved(&mut self, token: u64, to: JobRef) {
        let Some((conn, seq)) = self.held.tokens.get(&token).copied() else {
            return;
        };
        if let Some(job) = (self.held.conns.get_mut(&conn)).and_then(|c| c.jobs.get_mut(&seq)) {
            *job = to;
        }
    }

    /// The version is gone: so are the connections it still holds.
    fn close(&mut self, cx: &mut Cx<'_>) {
        for conn in self.conns_where(|_| true) {
            self.forget(cx, conn);
            cx.close_conn(conn);
        }
    }
}

impl HttpServer {
    fn accepted(&mut self, cx: &mut Cx<'_>, endpoint: EndpointId, conn: ConnId, peer: String) {
        cx.own_conn(conn);
        let http = HttpConn::new(self.config.clone(), cx.task_name(), cx.now.mono);
        let timer_token = cx.token();
        let c = Conn {
            endpoint,
            peer,
            http,
            jobs: IdMap::default(),
            timer: None,
            timer_token,
            armed_for: None,
            paused: false,
        };
        self.held.timers.insert(timer_token, conn);
        self.held.conns.insert(conn, c);
        self.sync(cx, conn);
    }

    /// One call on a connection's `HttpConn`, then what it asks for: its events acted on,
    /// its bytes written, its timer re-armed, the socket closed once it is done.
    fn step(
        &mut self,
        cx: &mut Cx<'_>,
        conn: ConnId,
        call: impl FnOnce(&mut HttpConn) -> Vec<HttpEvent>,
    ) {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return;
        };
        let events = call(&mut c.http);
        self.act(cx, conn, events);
        self.sync(cx, conn);
    }

    fn act(&mut self, cx: &mut Cx<'_>, conn: ConnId, events: Vec<HttpEvent>) {
        let mut queue = std::collections::VecDeque::from(events);
        while let Some(event) = queue.pop_front() {
            let more = self.event(cx, conn, event);
            queue.extend(more);
        }
    }

    /// Acts on one event; a refused submission is answered, which may bring more events.
    fn event(&mut self, cx: &mut Cx<'_>, conn: ConnId, event: HttpEvent) -> Vec<HttpEvent> {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return Vec::new();
        };
        match event {
            HttpEvent::Request(request) => return self.submit(cx, conn, *request),
            HttpEvent::BodyChunk { seq, bytes } => {
                if let Some(job) = c.jobs.get(&seq).copied() {
                    cx.push_chunk(job, bytes);
                }
            }
            HttpEvent::RequestEnd { seq } => {
                if let Some(job) = c.jobs.get(&seq).copied() {
                    cx.end_request(job);
                }
            }
            HttpEvent::Cancel { seq } => {
                let peer = c.peer.clone();
                if let Some(job) = c.jobs.remove(&seq).filter(|job| cx.cancel(*job)) {
                    let message =
                        format!("http connection {conn} ({peer}): request {seq} cancelled ({job:?})");
                    cx.log(LogLevel::Debug, message);
                }
                self.held.tokens.retain(|_, at| *at != (conn, seq));
            }
            HttpEvent::Rejected {
                seq,
                status,
                reason,
            } => {
                let message = format!(
                    "http connection {conn} ({}): request {seq} answered {status}: {reason}",
                    c.peer
                );
                cx.log(LogLevel::Debug, message);
            }
        }
        Vec::new()
    }

    fn submit(&mut self, cx: &mut Cx<'_>, conn: ConnId, request: Request) -> Vec<HttpEvent> {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let seq = request.seq;
        let job = Job {
            event: Some(request.event.clone()),
            policy: self.policy,
            mode: ReplyMode::Stream,
            origin: Some(Box::new(request.into_origin(Some(c.peer.clone())))),
            body: None,
        };
        let token = cx.token();
        match cx.submit(token, job) {
            Ok(job) => {
                c.jobs.insert(seq, job);
                self.held.tokens.insert(token, (conn, seq));
                Vec::new()
            }
            Err(f) => c.http.reply_error(seq, f.code, &f.message, cx.now.mono),
        }
    }

    /// Writes what the connection has to say, closes it once it is done, and keeps its
    /// header timer armed at the connection's deadline.
    fn sync(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        let Some(c) = self.held.conns.get_mut(&conn) else {
            return;
        };
        let bytes = c.http.take_output();
        if !bytes.is_empty() {
            cx.out().push_back(Output::ConnSend { conn, bytes });
        }
        if c.http.is_closed() {
            self.forget(cx, conn);
            cx.close_conn(conn);
            return;
        }
        let full = c.http.pipeline_full();
        if full != c.paused {
            c.paused = full;
            cx.out().push_back(Output::ConnReading { conn, on: !full });
        }
        let deadline = c.http.header_deadline();
        if deadline != c.armed_for {
            cx.cancel_timer(&mut c.timer);
            c.timer = deadline.and_then(|at| cx.arm(at, c.timer_token));
            c.armed_for = deadline;
        }
    }

    fn conns_where(&self, keep: impl Fn(&Conn) -> bool) -> Vec<ConnId> {
        let mut found: Vec<ConnId> = (self.held.conns.iter())
            .filter(|(_, c)| keep(c))
            .map(|(id, _)| *id)
            .collect();
        found.sort_unstable();
        found
    }

    /// Forgets a connection, cancelling the jobs it still waits for (their replies then find
    /// no connection) and its timer.
    fn forget(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        let Some(mut c) = self.held.conns.remove(&conn) else {
            return;
        };
        self.held.tokens.retain(|_, (at, _)| *at != conn);
        self.held.timers.remove(&c.timer_token);
        cx.cancel_timer(&mut c.timer);
        let mut jobs: Vec<(u64, JobRef)> = c.jobs.drain().collect();
        jobs.sort_unstable_by_key(|(seq, _)| *seq);
        let cancelled = jobs.into_iter().filter(|(_, job)| cx.cancel(*job)).count();
        if cancelled > 0 {
            let message = format!(
                "http connection {conn} ({}): {cancelled} job(s) cancelled",
                c.peer
            );
            cx.log(LogLevel::Debug, message);
        }
    }
}
