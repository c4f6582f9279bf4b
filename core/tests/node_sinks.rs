//! zeromq-sink, zeromq-subscriber and native-sink (docs/protocol.md §2, §4), through a
//! hand-driven node.

use crate::harness;

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::{Output, SocketKind};
use harness::*;
use serde_json::json;

const PUBSUB: &str = "tcp://127.0.0.1:9200";

fn app(tasks: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/sink",
            "pubsub": {{"endpoint": "{PUBSUB}", "interval": 600000}},
            "tasks": {{{tasks}}}}}"#
    )
}

/// What the worker got for each job, without invokes' meta: (event, chunks, ended).
fn jobs_seen(h: &Harness) -> Vec<(String, Vec<Bytes>)> {
    let mut out = Vec::new();
    for (w, sid) in &h.invokes {
        let mut event = String::new();
        let mut chunks = Vec::new();
        let mut ended = false;
        for m in h.worker(*w).messages() {
            match m {
                WorkerMessage::Invoke {
                    sid: s, event: e, ..
                } if s == *sid => event = e,
                WorkerMessage::Chunk { sid: s, data } if s == *sid => chunks.push(data),
                WorkerMessage::Choke { sid: s } if s == *sid => ended = true,
                _ => {}
            }
        }
        assert!(ended, "the request of job {sid} did not end");
        out.push((event, chunks));
    }
    out
}

#[test]
fn zeromq_sink_message_is_a_job_whose_reply_is_published() {
    let mut h = Harness::new();
    h.deploy(
        "app",
        &app(r#""collect": {"type": "zeromq-sink", "endpoint": "tcp://127.0.0.1:9201"}"#),
    );
    let ep = h.endpoint("tcp://127.0.0.1:9201");
    assert!(h
        .binds
        .contains(&(ep, SocketKind::Pull, "tcp://127.0.0.1:9201".into())));
    h.receive(ep, vec![b(br#"{"x": "#), b(br#"[1, 2]}"#)]);
    assert_eq!(
        jobs_seen(&h),
        vec![(
            "collect".to_owned(),
            vec![b(br#"{"x": "#), b(br#"[1, 2]}"#)]
        )]
    );
    assert_eq!(
        published(&h.all(), "app:collect"),
        vec![(topic("app", "collect", "x", 0), json!([1, 2]))]
    );
}

#[test]
fn zeromq_subscriber_message_is_a_job_whose_reply_is_published() {
    let mut h = Harness::new();
    h.deploy(
        "app",
        &app(
            r#""follow": {"type": "zeromq-subscriber", "endpoint": "tcp://10.0.0.1:5555",
                "subscribe": ["up:", "down:"]}"#,
        ),
    );
    let bind = h.all().into_iter().find_map(|o| match o {
        Output::Bind {
            endpoint,
            kind: SocketKind::Sub,
            address,
            subscribe,
            ..
        } => Some((endpoint, address, subscribe)),
        _ => None,
    });
    let (ep, address, subscribe) = bind.expect("no SUB socket asked for");
    assert_eq!(address, "tcp://10.0.0.1:5555");
    assert_eq!(subscribe, vec![b(b"up:"), b(b"down:")]);
    h.receive(ep, vec![b(b"up: "), b(b"node7")]);
    assert_eq!(
        jobs_seen(&h),
        vec![("follow".to_owned(), vec![b(b"up: "), b(b"node7")])]
    );
    assert_eq!(
        published(&h.all(), "app:follow"),
        vec![(topic("app", "follow", "result", 0), json!("up: node7"))]
    );
}

#[test]
fn native_sink_takes_open_chunk_end_in_one_message_as_one_job() {
    let mut h = Harness::new();
    h.deploy(
        "app",
        &app(r#""ingest": {"type": "native-sink", "endpoint": "tcp://127.0.0.1:9202"}"#),
    );
    let ep = h.endpoint("tcp://127.0.0.1:9202");
    h.receive(
        ep,
        vec![
            open(1, ""),
            chunk(1, br#"{"k": "#),
            chunk(1, br#""v"}"#),
            choke(1),
        ],
    );
    h.receive(ep, vec![open(2, "custom"), choke(2)]);
    assert_eq!(
        jobs_seen(&h),
        vec![
            ("ingest".to_owned(), vec![b(br#"{"k": "#), b(br#""v"}"#)]),
            ("custom".to_owned(), vec![]),
        ]
    );
    let all = h.all();
    assert_eq!(
        published(&all, "app:ingest"),
        vec![(topic("app", "ingest", "k", 0), json!("v"))]
    );
    // Nothing is ever sent back on a PULL socket.
    assert!(sends(&all, ep).is_empty());
}

#[test]
fn malformed_native_sink_input_is_logged_and_dropped() {
    let mut h = Harness::new();
    h.deploy(
        "app",
        &app(r#""ingest": {"type": "native-sink", "endpoint": "tcp://127.0.0.1:9202"}"#),
    );
    let ep = h.endpoint("tcp://127.0.0.1:9202");
    h.fresh();
    for frames in [
        vec![b(b"\xff\x00garbage")],
        vec![open(1, ""), chunk(1, b"no end")],
        vec![chunk(3, b"not open"), choke(3)],
        vec![cocaine_core::codec::native::encode_ping(1)],
        vec![],
    ] {
        h.receive(ep, frames);
    }
    let out = h.fresh();
    let warnings: Vec<String> = logs(&out)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("native-sink dropped input"))
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(h.invokes.is_empty(), "a malformed request became a job");
    assert!(!out.iter().any(|o| matches!(o, Output::Spawn(_))));
    // The sink still works.
    h.receive(ep, vec![open(4, ""), chunk(4, b"ok"), choke(4)]);
    assert_eq!(jobs_seen(&h), vec![("ingest".to_owned(), vec![b(b"ok")])]);
}
