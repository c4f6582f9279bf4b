//! zeromq-server (docs/protocol.md §3) through a hand-driven node.

use crate::harness;

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const EP: &str = "tcp://127.0.0.1:9002";

fn setup(task_extra: &str, answer: Answer) -> (Harness, EndpointId) {
    let mut h = Harness::new();
    h.default.answer = answer;
    let json = format!(
        r#"{{"type": "python", "args": "local:///srv/srv",
            "tasks": {{"handle": {{"type": "zeromq-server", "endpoint": "{EP}"{task_extra}}}}}}}"#
    );
    h.deploy("srv", &json);
    let ep = h.endpoint(EP);
    h.fresh();
    (h, ep)
}

fn error_json(frames: &[Bytes]) -> Value {
    serde_json::from_slice(&frames[3]).expect("the error body is not JSON")
}

#[test]
fn body_frames_are_chunks_and_the_reply_is_one_message() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"id"), Bytes::new(), b(b"body1"), b(b"body2")]);
    let (w, sid) = h.invokes[0];
    let got: Vec<WorkerMessage> = h.worker(w).messages_no_heartbeat()[1..].to_vec();
    assert_eq!(
        got,
        vec![
            WorkerMessage::Chunk {
                sid,
                data: b(b"body1")
            },
            WorkerMessage::Chunk {
                sid,
                data: b(b"body2")
            },
            WorkerMessage::Choke { sid },
        ]
    );
    match &h.worker(w).messages()[0] {
        WorkerMessage::Invoke { event, .. } => assert_eq!(event, "handle"),
        other => panic!("expected an invoke first, got {other:?}"),
    }
    assert_eq!(
        sends(&h.fresh(), ep),
        vec![vec![
            b(b"id"),
            Bytes::new(),
            b(b"ok"),
            b(b"body1"),
            b(b"body2")
        ]]
    );
}

#[test]
fn routing_frames_are_kept_and_an_empty_body_is_an_empty_request() {
    let (mut h, ep) = setup("", Answer::Chunks(vec![b(b"pong")]));
    h.receive(ep, vec![b(b"hop1"), b(b"hop2"), Bytes::new()]);
    assert_eq!(
        sends(&h.fresh(), ep),
        vec![vec![
            b(b"hop1"),
            b(b"hop2"),
            Bytes::new(),
            b(b"ok"),
            b(b"pong")
        ]]
    );
}

#[test]
fn a_worker_error_is_an_error_reply_with_json() {
    let (mut h, ep) = setup("", Answer::Fail(502, "ValueError: boom".into()));
    h.receive(ep, vec![b(b"id"), Bytes::new(), b(b"x")]);
    let replies = sends(&h.fresh(), ep);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0][..3], [b(b"id"), Bytes::new(), b(b"error")]);
    assert_eq!(replies[0].len(), 4);
    assert_eq!(
        error_json(&replies[0]),
        json!({"code": 502, "message": "ValueError: boom"})
    );
}

#[test]
fn a_message_without_delimiter_gets_400() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"id"), b(b"body")]);
    let replies = sends(&h.fresh(), ep);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0][..3], [b(b"id"), Bytes::new(), b(b"error")]);
    assert_eq!(error_json(&replies[0])["code"], json!(400));
    assert!(h.invokes.is_empty(), "a bad request became a job");
}

#[test]
fn a_reply_over_the_reply_limit_gets_413() {
    let (mut h, ep) = setup(r#", "reply-limit": 8"#, Answer::Echo);
    h.receive(ep, vec![b(b"id"), Bytes::new(), b(b"12345678")]);
    assert_eq!(
        sends(&h.fresh(), ep),
        vec![vec![b(b"id"), Bytes::new(), b(b"ok"), b(b"12345678")]]
    );
    h.receive(ep, vec![b(b"id"), Bytes::new(), b(b"1234"), b(b"56789")]);
    let replies = sends(&h.fresh(), ep);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0][..3], [b(b"id"), Bytes::new(), b(b"error")]);
    assert_eq!(error_json(&replies[0])["code"], json!(413));
}

#[test]
fn a_request_over_max_message_gets_413_and_no_job() {
    let (mut h, ep) = setup(r#", "max-message": 8"#, Answer::Echo);
    h.receive(ep, vec![b(b"id"), Bytes::new(), b(b"1234"), b(b"56789")]);
    let replies = sends(&h.fresh(), ep);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0][..3], [b(b"id"), Bytes::new(), b(b"error")]);
    assert_eq!(error_json(&replies[0])["code"], json!(413));
    assert!(h.invokes.is_empty());
    assert!(h.spawned.is_empty(), "a refused request grew the pool");
}
