//! native-server (docs/protocol.md §2) through a hand-driven node.

use crate::harness;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::NodeConfig;
use cocaine_core::EndpointId;
use harness::*;

const EP: &str = "tcp://127.0.0.1:9001";

fn app_json(engine: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/echo", "engine": {{{engine}}},
            "tasks": {{"echo": {{"type": "native-server", "endpoint": "{EP}"}}}}}}"#
    )
}

fn setup(engine: &str, answer: Answer) -> (Harness, EndpointId) {
    let mut h = Harness::new();
    h.default.answer = answer;
    h.deploy("echo", &app_json(engine));
    let ep = h.endpoint(EP);
    h.fresh();
    (h, ep)
}

/// Exact bytes of `[4, 1, bin "hello"]` and `[5, 1]`, written out by hand.
const CHUNK_1_HELLO: &[u8] = &[0x93, 0x04, 0x01, 0xc4, 0x05, b'h', b'e', b'l', b'l', b'o'];
const CHOKE_1: &[u8] = &[0x92, 0x05, 0x01];

#[test]
fn one_shot_in_one_multipart_message() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(
        ep,
        vec![b(b"client"), open(1, ""), chunk(1, b"hello"), choke(1)],
    );
    let out = h.fresh();
    assert_eq!(
        sends(&out, ep),
        // Consecutive replies to one client share one ZeroMQ message.
        vec![vec![b(b"client"), b(CHUNK_1_HELLO), b(CHOKE_1)]]
    );
    let w = h.last_worker("echo");
    let sid = h.worker(w).invoked[0];
    let got: Vec<WorkerMessage> = h
        .worker(w)
        .messages_no_heartbeat()
        .into_iter()
        .filter(|m| !matches!(m, WorkerMessage::Invoke { .. }))
        .collect();
    assert_eq!(
        got,
        vec![
            WorkerMessage::Chunk {
                sid,
                data: b(b"hello")
            },
            WorkerMessage::Choke { sid },
        ]
    );
}

#[test]
fn one_shot_as_three_messages() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"client"), open(1, "")]);
    h.receive(ep, vec![b(b"client"), chunk(1, b"hello")]);
    assert!(sends(&h.fresh(), ep).is_empty(), "replied before the end");
    h.receive(ep, vec![b(b"client"), choke(1)]);
    assert_eq!(
        sends(&h.fresh(), ep),
        // Consecutive replies to one client share one ZeroMQ message.
        vec![vec![b(b"client"), b(CHUNK_1_HELLO), b(CHOKE_1)]]
    );
}

#[test]
fn leading_empty_delimiter_is_echoed() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(
        ep,
        vec![
            b(b"dealer"),
            Bytes::new(),
            open(7, ""),
            chunk(7, b"x"),
            choke(7),
        ],
    );
    assert_eq!(
        sends(&h.fresh(), ep),
        vec![vec![b(b"dealer"), Bytes::new(), chunk(7, b"x"), choke(7)]]
    );
}

#[test]
fn request_chunks_after_dispatch_stream_in_order() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"c"), open(3, ""), chunk(3, b"a")]);
    let w = h.last_worker("echo");
    assert_eq!(h.worker(w).invoked.len(), 1, "the job was not dispatched");
    let sid = h.worker(w).invoked[0];
    h.receive(ep, vec![b(b"c"), chunk(3, b"b")]);
    h.receive(ep, vec![b(b"c"), chunk(3, b"c"), choke(3)]);
    let got: Vec<WorkerMessage> = h
        .worker(w)
        .messages_no_heartbeat()
        .into_iter()
        .filter(|m| !matches!(m, WorkerMessage::Invoke { .. }))
        .collect();
    let ch = |d: &[u8]| WorkerMessage::Chunk { sid, data: b(d) };
    assert_eq!(
        got,
        vec![ch(b"a"), ch(b"b"), ch(b"c"), WorkerMessage::Choke { sid }]
    );
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![
            NativeMessage::Chunk {
                sid: 3,
                data: b(b"a")
            },
            NativeMessage::Chunk {
                sid: 3,
                data: b(b"b")
            },
            NativeMessage::Chunk {
                sid: 3,
                data: b(b"c")
            },
            NativeMessage::Choke { sid: 3 },
        ]
    );
}

#[test]
fn ping_gets_pong() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(
        ep,
        vec![b(b"c"), cocaine_core::codec::native::encode_ping(42)],
    );
    // [10, 42]
    assert_eq!(
        sends(&h.fresh(), ep),
        vec![vec![b(b"c"), b(&[0x92, 0x0a, 0x2a])]]
    );
}

#[test]
fn open_of_a_sid_still_open_is_refused_and_the_first_goes_on() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"c"), open(5, "")]);
    h.receive(ep, vec![b(b"c"), open(5, "")]);
    let replies = native_replies(&h.fresh(), ep, b"c");
    assert_eq!(replies.len(), 1);
    match &replies[0] {
        NativeMessage::Error { sid, code, message } => {
            assert_eq!((*sid, *code), (5, 400));
            assert!(message.contains("already open"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    h.receive(ep, vec![b(b"c"), chunk(5, b"first"), choke(5)]);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![
            NativeMessage::Chunk {
                sid: 5,
                data: b(b"first")
            },
            NativeMessage::Choke { sid: 5 }
        ]
    );
    // One job only reached the worker.
    assert_eq!(h.worker(h.last_worker("echo")).invoked.len(), 1);
}

#[test]
fn garbage_frame_gets_a_connection_error_and_other_requests_go_on() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"c"), open(1, "")]);
    h.receive(
        ep,
        vec![
            b(b"c"),
            b(b"\xc1garbage"),
            open(2, ""),
            chunk(2, b"two"),
            choke(2),
        ],
    );
    let replies = native_replies(&h.fresh(), ep, b"c");
    assert_eq!(replies.len(), 3, "{replies:?}");
    match &replies[0] {
        NativeMessage::Error { sid, code, message } => {
            assert_eq!((*sid, *code), (0, 400));
            assert!(!message.is_empty());
        }
        other => panic!("expected [6, 0, 400, ..], got {other:?}"),
    }
    assert_eq!(
        replies[1..],
        [
            NativeMessage::Chunk {
                sid: 2,
                data: b(b"two")
            },
            NativeMessage::Choke { sid: 2 }
        ]
    );
    h.receive(ep, vec![b(b"c"), chunk(1, b"one"), choke(1)]);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![
            NativeMessage::Chunk {
                sid: 1,
                data: b(b"one")
            },
            NativeMessage::Choke { sid: 1 }
        ]
    );
}

#[test]
fn cancel_gives_exactly_one_terminal_and_a_late_reply_is_dropped() {
    let (mut h, ep) = setup("", Answer::Manual);
    h.receive(ep, vec![b(b"c"), open(9, ""), chunk(9, b"x"), choke(9)]);
    let w = h.last_worker("echo");
    let sid = h.worker(w).invoked[0];
    h.fresh();
    h.receive(ep, vec![b(b"c"), cancel(9)]);
    let out = h.fresh();
    // [6, 9, 499, "cancelled"]
    let mut expected = vec![0x94, 0x06, 0x09, 0xcd, 0x01, 0xf3, 0xa9];
    expected.extend_from_slice(b"cancelled");
    assert_eq!(sends(&out, ep), vec![vec![b(b"c"), b(&expected)]]);
    assert!(h.worker(w).jobs[&sid].cancelled, "the worker got no cancel");
    assert!(h
        .worker(w)
        .messages()
        .contains(&WorkerMessage::Cancel { sid }));
    // A second cancel and the worker's late answer reach nobody.
    h.receive(ep, vec![b(b"c"), cancel(9)]);
    h.worker_replies(w, sid, &[b"late"]);
    assert_eq!(sends(&h.fresh(), ep), Vec::<Vec<Bytes>>::new());
    // The connection goes on, and the sid can be used again.
    h.default.answer = Answer::Echo;
    h.receive(ep, vec![b(b"c"), open(9, ""), chunk(9, b"y"), choke(9)]);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![
            NativeMessage::Chunk {
                sid: 9,
                data: b(b"y")
            },
            NativeMessage::Choke { sid: 9 }
        ]
    );
}

#[test]
fn empty_event_means_the_task_name_and_others_pass_as_is() {
    let (mut h, ep) = setup("", Answer::Echo);
    h.receive(ep, vec![b(b"c"), open(1, ""), choke(1)]);
    h.receive(ep, vec![b(b"c"), open(2, "resize"), choke(2)]);
    let w = h.last_worker("echo");
    let events: Vec<String> = h
        .worker(w)
        .messages()
        .into_iter()
        .filter_map(|m| match m {
            WorkerMessage::Invoke { event, meta, .. } => {
                assert_eq!(meta.task.as_deref(), Some("echo"));
                Some(event)
            }
            _ => None,
        })
        .collect();
    assert_eq!(events, vec!["echo".to_owned(), "resize".to_owned()]);
}

#[test]
fn full_queue_answers_503_at_once() {
    let (mut h, ep) = setup(r#""pool-limit": 1, "queue-limit": 1"#, Answer::Manual);
    h.receive(ep, vec![b(b"c"), open(1, ""), choke(1)]); // running
    h.receive(ep, vec![b(b"c"), open(2, ""), choke(2)]); // queued
    assert!(sends(&h.fresh(), ep).is_empty());
    h.receive(ep, vec![b(b"c"), open(3, ""), choke(3)]);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![NativeMessage::Error {
            sid: 3,
            code: 503,
            message: "queue is full".into()
        }]
    );
    assert_eq!(h.node.engine("echo").map(|e| e.queued()), Some(1));
}

#[test]
fn more_open_requests_than_the_per_peer_limit_get_503() {
    let mut h = Harness::with_config(NodeConfig {
        hostname: HOST.to_owned(),
        max_open_per_peer: 2,
        ..NodeConfig::default()
    });
    h.default.answer = Answer::Manual;
    h.deploy("echo", &app_json(""));
    let ep = h.endpoint(EP);
    h.fresh();
    h.receive(ep, vec![b(b"c"), open(1, ""), open(2, "")]);
    h.receive(ep, vec![b(b"c"), open(3, "")]);
    let replies = native_replies(&h.fresh(), ep, b"c");
    assert_eq!(replies.len(), 1);
    match &replies[0] {
        NativeMessage::Error { sid: 3, code, .. } => assert_eq!(*code, 503),
        other => panic!("expected [6, 3, 503, ..], got {other:?}"),
    }
    // Another client is not affected.
    h.receive(ep, vec![b(b"other"), open(3, "")]);
    assert!(native_replies(&h.fresh(), ep, b"other").is_empty());
    // Once one request ends, the first client may open again.
    h.receive(ep, vec![b(b"c"), choke(1)]);
    let (w, first) = h.invokes[0];
    h.worker_replies(w, first, &[]);
    h.receive(ep, vec![b(b"c"), open(4, "")]);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![NativeMessage::Choke { sid: 1 }]
    );
}

#[test]
fn policy_timeout_answers_504_and_cancels_on_the_worker() {
    let (mut h, ep) = setup("", Answer::Manual);
    let policy = Policy {
        timeout_ms: Some(100),
        ..Policy::default()
    };
    h.receive(ep, vec![b(b"c"), open_with(1, "", policy), choke(1)]);
    let w = h.last_worker("echo");
    let sid = h.worker(w).invoked[0];
    h.advance(Duration::from_millis(99));
    assert!(sends(&h.fresh(), ep).is_empty(), "timed out early");
    h.advance(Duration::from_millis(1));
    assert_eq!(
        native_replies(&h.fresh(), ep, b"c"),
        vec![NativeMessage::Error {
            sid: 1,
            code: 504,
            message: "timed out after 100 ms".into()
        }]
    );
    let cancels: Vec<_> = h
        .worker(w)
        .received
        .iter()
        .filter(|(_, m)| matches!(m, WorkerMessage::Cancel { .. }))
        .cloned()
        .collect();
    assert_eq!(
        cancels,
        vec![(Duration::from_millis(100), WorkerMessage::Cancel { sid })]
    );
    // The invoke told the worker its timeout.
    assert_eq!(h.worker(w).jobs[&sid].meta.timeout_ms, Some(100));
}
