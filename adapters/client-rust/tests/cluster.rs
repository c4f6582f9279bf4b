//! The cluster client against in-test servers: a control endpoint that answers `resolve`
//! with the JSON a node gives, and native-protocol nodes that answer, refuse with 503, or do
//! not answer at all. Every wait has a deadline; nothing sleeps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cocaine_client::{reachable, ClientError, ClusterClient, ClusterError};
use cocaine_core::codec::native::{encode_choke, encode_chunk, encode_error, NativeMessage};
use serde_json::{json, Value};

const POLL: i32 = 50;

/// A thread serving a socket until `stop` is set.
struct Server {
    endpoint: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

fn serve(
    kind: zmq::SocketType,
    mut answer: impl FnMut(&zmq::Socket, Vec<Vec<u8>>) + Send + 'static,
) -> Server {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(kind).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(POLL).unwrap();
    socket.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = socket.get_last_endpoint().unwrap().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            match socket.recv_multipart(0) {
                Ok(frames) => answer(&socket, frames),
                Err(zmq::Error::EAGAIN) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    Server {
        endpoint,
        stop,
        handle: Some(handle),
    }
}

/// A native node: each request gets `reply(body)`: Ok(chunk) or Err(code).
fn node(reply: impl Fn(&[u8]) -> Result<Vec<u8>, u32> + Send + 'static) -> Server {
    serve(zmq::ROUTER, move |socket, frames| {
        let (id, messages) = frames.split_first().unwrap();
        let mut sid = 0;
        let mut body = Vec::new();
        for m in messages {
            match NativeMessage::decode(m, usize::MAX).unwrap() {
                NativeMessage::Open { sid: s, .. } => sid = s,
                NativeMessage::Chunk { data, .. } => body.extend_from_slice(&data),
                NativeMessage::Choke { .. } => {
                    let answer: Vec<Vec<u8>> = match reply(&body) {
                        Ok(chunk) => vec![
                            encode_chunk(sid, &chunk).to_vec(),
                            encode_choke(sid).to_vec(),
                        ],
                        Err(code) => vec![encode_error(sid, code, "queue full").to_vec()],
                    };
                    let mut parts = vec![id.clone()];
                    parts.extend(answer);
                    socket.send_multipart(parts, 0).unwrap();
                }
                _ => {}
            }
        }
    })
}

/// A node that takes requests and never answers.
fn silent_node() -> Server {
    serve(zmq::ROUTER, |_, _| {})
}

/// A control endpoint whose `resolve` answers `nodes` (built when asked).
fn control(nodes: impl Fn() -> Value + Send + 'static) -> Server {
    serve(zmq::ROUTER, move |socket, frames| {
        let request: Value = serde_json::from_slice(frames.last().unwrap()).unwrap();
        assert_eq!(request["action"], "resolve");
        let reply = json!({"ok": {"app": request["app"], "nodes": nodes()}}).to_string();
        socket
            .send_multipart([frames[0].clone(), Vec::new(), reply.into_bytes()], 0)
            .unwrap();
    })
}

fn entry(id: &str, endpoint: &str, queue: u64, state: &str) -> Value {
    json!({"node_id": id, "control": null, "local": false, "silent_ms": 0, "version": 1,
           "state": state, "tasks": {"hello": endpoint}, "queue": queue, "busy": 1,
           "workers": 1, "pool_limit": 2, "queue_limit": 10})
}

fn connect(control: &Server) -> ClusterClient {
    let mut c =
        ClusterClient::connect(std::slice::from_ref(&control.endpoint), "app", "hello").unwrap();
    c.set_timeout(Duration::from_millis(500));
    c
}

#[test]
fn a_503_is_retried_at_another_node() {
    let busy = node(|_| Err(503));
    let good = node(|body| Ok([b"ok:", body].concat()));
    let (b, g) = (busy.endpoint.clone(), good.endpoint.clone());
    let ctl = control(move || {
        json!([
            entry("busy", &b, 0, "running"),
            entry("good", &g, 0, "running")
        ])
    });
    let mut client = connect(&ctl);
    let mut retries = 0;
    for _ in 0..40 {
        let reply = client.call("hello", b"x").unwrap();
        assert_eq!(reply.chunks, vec![b"ok:x".to_vec()]);
        assert_eq!(reply.endpoint, good.endpoint);
        assert_eq!(reply.node_id.as_deref(), Some("good"));
        retries += reply.retries;
    }
    // Equal announced loads: the busy node is drawn first about half the time.
    assert!(retries > 0, "the 503 node was never tried");
}

#[test]
fn when_every_node_answers_503_the_503_is_the_answer() {
    let a = node(|_| Err(503));
    let b = node(|_| Err(503));
    let (ea, eb) = (a.endpoint.clone(), b.endpoint.clone());
    let ctl =
        control(move || json!([entry("a", &ea, 0, "running"), entry("b", &eb, 0, "running")]));
    let mut client = connect(&ctl);
    match client.call("hello", b"x") {
        Err(ClusterError::Call {
            source: ClientError::Remote { code: 503, .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_errors_are_final() {
    let missing = node(|_| Err(404));
    let good = node(|_| Ok(b"ok".to_vec()));
    let (m, g) = (missing.endpoint.clone(), good.endpoint.clone());
    // The 404 node looks idle, the other loaded: the choice falls on the 404 node.
    let ctl = control(move || json!([entry("m", &m, 0, "running"), entry("g", &g, 9, "running")]));
    let mut client = connect(&ctl);
    match client.call("hello", b"x") {
        Err(ClusterError::Call {
            source: ClientError::Remote { code: 404, .. },
            endpoint,
        }) => {
            assert_eq!(endpoint, missing.endpoint)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_silent_node_is_left_for_another() {
    let silent = silent_node();
    let good = node(|_| Ok(b"ok".to_vec()));
    let (s, g) = (silent.endpoint.clone(), good.endpoint.clone());
    // The silent node looks idle: it is chosen first, times out, and the call moves on.
    let ctl = control(move || json!([entry("s", &s, 0, "running"), entry("g", &g, 5, "running")]));
    let mut client = connect(&ctl);
    let reply = client.call("hello", b"x").unwrap();
    assert_eq!(reply.endpoint, good.endpoint);
    assert_eq!(reply.retries, 1);
}

#[test]
fn full_and_broken_nodes_are_never_chosen_and_less_loaded_ones_are_preferred() {
    let full = node(|_| Ok(b"full".to_vec()));
    let broken = node(|_| Ok(b"broken".to_vec()));
    let light = node(|_| Ok(b"light".to_vec()));
    let heavy = node(|_| Ok(b"heavy".to_vec()));
    let (f, b, l, h) = (
        full.endpoint.clone(),
        broken.endpoint.clone(),
        light.endpoint.clone(),
        heavy.endpoint.clone(),
    );
    let ctl = control(move || {
        json!([
            entry("f", &f, 10, "running"),
            entry("b", &b, 0, "broken"),
            entry("l", &l, 0, "running"),
            entry("h", &h, 8, "running")
        ])
    });
    let mut client = connect(&ctl);
    let mut light_answers = 0;
    for _ in 0..60 {
        let reply = client.call("hello", b"").unwrap();
        assert!(
            reply.chunks == [b"light".to_vec()] || reply.chunks == [b"heavy".to_vec()],
            "{reply:?}"
        );
        if reply.chunks == [b"light".to_vec()] {
            light_answers += 1;
        }
    }
    // p2c over {light, heavy} and two excluded: light wins every draw that includes it.
    assert!(light_answers > 30, "{light_answers}");
}

#[test]
fn the_client_follows_nodes_joining_and_leaving() {
    let a = node(|_| Ok(b"a".to_vec()));
    let b = node(|_| Ok(b"b".to_vec()));
    let (ea, eb) = (a.endpoint.clone(), b.endpoint.clone());
    let joined = Arc::new(AtomicBool::new(false));
    let flag = joined.clone();
    let ctl = control(move || {
        if flag.load(Ordering::SeqCst) {
            json!([entry("b", &eb, 0, "running")])
        } else {
            json!([entry("a", &ea, 0, "running")])
        }
    });
    let mut client = connect(&ctl);
    client.set_refresh(Duration::ZERO);
    assert_eq!(client.call("hello", b"").unwrap().chunks, [b"a".to_vec()]);
    joined.store(true, Ordering::SeqCst);
    assert_eq!(client.call("hello", b"").unwrap().chunks, [b"b".to_vec()]);
    assert_eq!(client.nodes().len(), 1);
}

#[test]
fn no_control_answering_is_an_error_naming_it() {
    match ClusterClient::connect(&[], "app", "hello") {
        Err(ClusterError::Unresolved { .. }) => {}
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("resolved with no control endpoint"),
    }
}

/// A control endpoint that answers every request with these bytes.
fn raw_control(reply: &'static [u8]) -> Server {
    serve(zmq::ROUTER, move |socket, frames| {
        socket
            .send_multipart([frames[0].clone(), Vec::new(), reply.to_vec()], 0)
            .unwrap();
    })
}

#[test]
fn malformed_resolve_answers_are_errors() {
    for reply in [
        &b"not json"[..],
        b"",
        b"[1, 2]",
        br#"{"ok": {"nodes": "three"}}"#,
        br#"{"ok": 5}"#,
        br#"{"error": {"code": 404, "message": "no app named \"app\""}}"#,
        b"\xff\xfe",
    ] {
        let ctl = raw_control(reply);
        match ClusterClient::connect(std::slice::from_ref(&ctl.endpoint), "app", "hello") {
            Err(ClusterError::Unresolved { reason, .. }) => {
                assert!(reason.starts_with(&ctl.endpoint), "{reason}")
            }
            Err(other) => panic!("{reply:?}: {other:?}"),
            Ok(_) => panic!("{reply:?} resolved"),
        }
    }
}

#[test]
fn hostile_node_entries_are_skipped_or_read_safely() {
    let good = node(|_| Ok(b"ok".to_vec()));
    let g = good.endpoint.clone();
    let ctl = control(move || {
        json!([
            {"node_id": 7, "tasks": {"hello": 5}},
            {"tasks": "none"},
            "a string",
            null,
            {"node_id": "odd", "state": "running", "tasks": {"other": "tcp://127.0.0.1:1"}},
            {"node_id": "huge", "state": "running", "tasks": {"hello": "tcp://127.0.0.1:1"},
             "queue": -1, "busy": "x", "pool_limit": 1e300, "queue_limit": u64::MAX},
            entry("good", &g, 0, "running"),
        ])
    });
    let mut client = connect(&ctl);
    // Entries without the task's endpoint as a string are left out.
    let ids: Vec<_> = client.nodes().iter().map(|n| n.node_id.clone()).collect();
    assert_eq!(ids, [Some("huge".to_owned()), Some("good".to_owned())]);
    // Garbage load reads as zeros (never a panic).
    let huge = &client.nodes()[0];
    assert_eq!(
        (huge.load.queue, huge.load.busy, huge.load.pool_limit),
        (0, 0, 0)
    );
    // Nothing listens at "huge": a call that tries it there times out and moves on.
    for _ in 0..6 {
        assert_eq!(client.call("hello", b"").unwrap().endpoint, good.endpoint);
    }
}

#[test]
fn wildcard_hosts_are_reached_through_the_node() {
    assert_eq!(
        reachable("tcp://*:9110", "tcp://127.0.0.2:5000"),
        "tcp://127.0.0.2:9110"
    );
    assert_eq!(
        reachable("tcp://0.0.0.0:9110", "tcp://*:5000"),
        "tcp://127.0.0.1:9110"
    );
    assert_eq!(
        reachable("tcp://10.0.0.1:9110", "tcp://127.0.0.2:5000"),
        "tcp://10.0.0.1:9110"
    );
    assert_eq!(reachable("ipc:///x", "tcp://127.0.0.2:5000"), "ipc:///x");
}
