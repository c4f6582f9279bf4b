//! The load every bench applies: `clients` threads, each a DEALER keeping `depth` one-shot
//! calls in flight, for a fixed time, recording each call's latency and how it ended.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cocaine_core::auth::seal::{self, Direction};
use cocaine_core::auth::session::{open_session_request, ClientSession};
use cocaine_core::auth::{body_digest, sign_open, Invoke, PublicKey};
use cocaine_core::codec::native::{self, NativeMessage};
use cocaine_core::codec::native_session::decode_grant;
use cocaine_core::stats::Histogram;
use cocaine_keys::UserKey;

/// How requests are framed: the native protocol (sids in msgpack) or a zeromq-server task
/// (plain frames; the client adds a routing frame of its own to match replies to calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Native,
    Zeromq,
}

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct Load {
    pub protocol: Protocol,
    /// The event a native call opens (empty: the task's own name).
    pub event: String,
    pub clients: usize,
    pub depth: usize,
    pub size: usize,
    pub duration: Duration,
    /// Print a progress line on stderr every second.
    pub progress: bool,
    /// Sign every native call as this user, for this app (each call a fresh timestamp and
    /// nonce, signed by OpenSSL on the client's thread).
    pub signer: Option<Arc<(String, UserKey)>>,
    /// With `signer`: each client opens one session with a signed request and MACs its calls
    /// with the session key instead of signing each (docs/security.md, "Session keys").
    pub session: bool,
    /// Seal every (signed) call's body for this node key (docs/security.md, "Sealed bodies");
    /// the node seals each reply for the user. The bench does not open the replies.
    pub seal: Option<Arc<PublicKey>>,
}

/// What one measurement found.
#[derive(Debug, Clone)]
pub struct Figures {
    pub completed: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    pub latency: Histogram,
}

impl Figures {
    fn new() -> Self {
        Self {
            completed: 0,
            failed: 0,
            first_failure: None,
            elapsed: Duration::ZERO,
            latency: Histogram::new(),
        }
    }

    pub fn rps(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in microseconds.
    pub fn us(&self, q: f64) -> u64 {
        self.latency.quantile(q).as_micros() as u64
    }

    fn add(&mut self, other: Figures) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.latency.merge(&other.latency);
    }
}

/// Runs the load against `endpoint`. `between(elapsed)` is called once the clients have
/// started and again when they are told to stop, so a caller can sample what it measures
/// over exactly that window.
pub fn run(endpoint: &str, load: &Load, mut between: impl FnMut()) -> Result<Figures, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for _ in 0..load.clients.max(1) {
        let (endpoint, load, stop, done) = (
            endpoint.to_owned(),
            load.clone(),
            stop.clone(),
            done.clone(),
        );
        threads.push(thread::spawn(move || {
            client(&endpoint, &load, &stop, &done)
        }));
    }
    between();
    let started = Instant::now();
    wait(load, started, &done);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    between();
    if load.progress {
        eprintln!();
    }
    let mut total = Figures::new();
    total.elapsed = elapsed;
    for t in threads {
        total.add(t.join().map_err(|_| "a client thread panicked")??);
    }
    Ok(total)
}

/// Sleeps through the measurement, printing a progress line each second if asked.
fn wait(load: &Load, started: Instant, done: &AtomicU64) {
    let end = started + load.duration;
    let mut last = (started, 0);
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        thread::sleep((end - now).min(Duration::from_secs(1)));
        if load.progress {
            let (now, calls) = (Instant::now(), done.load(Ordering::Relaxed));
            let rate = (calls - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            eprint!(
                "\r  {:>5.1} s  {calls:>10} calls  {rate:>10.0} calls/s ",
                (now - started).as_secs_f64()
            );
            let _ = std::io::stderr().flush();
            last = (now, calls);
        }
    }
}

/// How a reply frame ended a call, if it did.
enum Ending {
    Ok,
    Failed(String),
}

fn client(
    endpoint: &str,
    load: &Load,
    stop: &AtomicBool,
    done: &AtomicU64,
) -> Result<Figures, String> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
    socket.set_rcvtimeo(10_000).map_err(|e| e.to_string())?;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.connect(endpoint).map_err(|e| e.to_string())?;
    let body = vec![b'x'; load.size];
    let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(load.depth * 2);
    let mut next_sid = 1u64;
    let mut figures = Figures::new();
    let mut session = match (&load.signer, load.session) {
        (Some(signer), true) => Some(open_session(&socket, signer)?),
        _ => None,
    };
    let mut send = |sent_at: &mut HashMap<u64, Instant>| {
        sent_at.insert(next_sid, Instant::now());
        next_sid += 1;
        if let (Some(session), Some(signer)) = (session.as_mut(), &load.signer) {
            let open = session.open(
                next_sid - 1,
                &signer.0,
                &load.event,
                &native::Policy::default(),
                body_digest([&body[..]]),
            );
            let (chunk, end) = (
                native::encode_chunk(next_sid - 1, &body),
                native::encode_choke(next_sid - 1),
            );
            return (socket.send_multipart([&open[..], &chunk[..], &end[..]], 0))
                .map_err(|e| e.to_string());
        }
        send_call(&socket, load, next_sid - 1, &body)
    };
    for _ in 0..load.depth.max(1) {
        send(&mut sent_at)?;
    }
    while !sent_at.is_empty() {
        let frames = socket
            .recv_multipart(0)
            .map_err(|e| format!("no reply within 10 s: {e}"))?;
        for (sid, ending) in endings(load.protocol, &frames) {
            let Some(at) = sent_at.remove(&sid) else {
                continue;
            };
            figures.latency.record(at.elapsed());
            figures.completed += 1;
            done.fetch_add(1, Ordering::Relaxed);
            if let Ending::Failed(why) = ending {
                figures.failed += 1;
                figures.first_failure.get_or_insert(why);
            }
            if !stop.load(Ordering::Relaxed) {
                send(&mut sent_at)?;
            }
        }
    }
    Ok(figures)
}

/// Sends one whole call: `[3]`, `[4]`, `[5]` for native; `[sid, "", body]` for zeromq.
pub fn send_call(socket: &zmq::Socket, load: &Load, sid: u64, body: &[u8]) -> Result<(), String> {
    let sent = match load.protocol {
        Protocol::Native => {
            let (open, sealed) = match &load.signer {
                Some(signer) => signed_open(signer, load, sid, body)?,
                None => (
                    native::encode_open(sid, &load.event, &native::Policy::default(), None),
                    None,
                ),
            };
            let chunk = native::encode_chunk(sid, sealed.as_deref().unwrap_or(body));
            let end = native::encode_choke(sid);
            socket.send_multipart([&open[..], &chunk[..], &end[..]], 0)
        }
        Protocol::Zeromq => socket.send_multipart([&sid.to_be_bytes()[..], b"", body], 0),
    };
    sent.map_err(|e| e.to_string())
}

/// The open of a signed call (docs/security.md), and the sealed body when the load seals.
fn signed_open(
    signer: &(String, UserKey),
    load: &Load,
    sid: u64,
    body: &[u8],
) -> Result<(bytes::Bytes, Option<Vec<u8>>), String> {
    let (app, key) = signer;
    let stamp = cocaine_keys::stamp().map_err(|e| e.to_string())?;
    let sealed = match &load.seal {
        Some(node_key) => {
            let aad =
                seal::associated_data(Direction::Request, &key.user, app, stamp.nonce.as_bytes());
            let mut random = cocaine_keys::OsRandom;
            Some(seal::seal(node_key, body, &aad, &mut random).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let policy = native::Policy {
        sealed: sealed.is_some(),
        ..native::Policy::default()
    };
    let invoke = Invoke {
        sid,
        app,
        event: &load.event,
        policy: &policy,
        body: body_digest([sealed.as_deref().unwrap_or(body)]),
    };
    let open = sign_open(&invoke, &stamp, key).map_err(|e| e.to_string())?;
    Ok((open, sealed))
}

/// Opens a session on `socket` with a signed session-open (sid 0 is the connection's, so the
/// calls' sids from 1 never meet it: `u64::MAX` is used) and returns it.
fn open_session(socket: &zmq::Socket, signer: &(String, UserKey)) -> Result<ClientSession, String> {
    let (app, key) = signer;
    let sid = u64::MAX;
    let stamp = cocaine_keys::stamp().map_err(|e| e.to_string())?;
    let open = open_session_request(sid, app, &stamp, key).map_err(|e| e.to_string())?;
    let end = native::encode_choke(sid);
    (socket.send_multipart([&open[..], &end[..]], 0)).map_err(|e| e.to_string())?;
    let mut grant = Vec::new();
    loop {
        let frames =
            (socket.recv_multipart(0)).map_err(|e| format!("no session within 10 s: {e}"))?;
        for frame in frames {
            match NativeMessage::decode(&frame, usize::MAX) {
                Ok(NativeMessage::Chunk { sid: s, data }) if s == sid => {
                    grant.extend_from_slice(&data)
                }
                Ok(NativeMessage::Choke { sid: s }) if s == sid => {
                    let grant =
                        decode_grant(&grant).map_err(|e| format!("a bad session grant: {e}"))?;
                    return ClientSession::from_grant(&grant, key).map_err(|e| e.to_string());
                }
                Ok(NativeMessage::Error { code, message, .. }) => {
                    return Err(format!("the session-open was refused: {code} {message}"))
                }
                _ => {}
            }
        }
    }
}

/// The calls a received message ends, with how.
fn endings(protocol: Protocol, frames: &[Vec<u8>]) -> Vec<(u64, Ending)> {
    match protocol {
        Protocol::Native => frames
            .iter()
            .filter_map(|f| match NativeMessage::decode(f, usize::MAX) {
                Ok(NativeMessage::Choke { sid }) => Some((sid, Ending::Ok)),
                Ok(NativeMessage::Error { sid, code, message }) => {
                    Some((sid, Ending::Failed(format!("{code} {message}"))))
                }
                _ => None,
            })
            .collect(),
        Protocol::Zeromq => zeromq_ending(frames).into_iter().collect(),
    }
}

/// `[sid, "", "ok", chunks...]` or `[sid, "", "error", json]`.
fn zeromq_ending(frames: &[Vec<u8>]) -> Option<(u64, Ending)> {
    let sid = u64::from_be_bytes(frames.first()?.as_slice().try_into().ok()?);
    let ending = match (frames.get(1), frames.get(2)) {
        (Some(empty), Some(status)) if empty.is_empty() && status == b"ok" => Ending::Ok,
        (Some(empty), Some(status)) if empty.is_empty() && status == b"error" => Ending::Failed(
            String::from_utf8_lossy(frames.get(3).map_or(&[][..], |f| f)).into_owned(),
        ),
        _ => Ending::Failed("a reply that is not a zeromq-server reply".to_owned()),
    };
    Some((sid, ending))
}
