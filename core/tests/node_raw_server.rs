//! raw-server (docs/protocol.md §5) through a hand-driven node: each framing, replies in order
//! whatever order jobs end in, clients that leave, limits, input split anywhere.

use crate::harness;

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::{Input, Output, SocketKind};
use cocaine_core::ConnId;
use harness::*;

const EP: &str = "tcp://127.0.0.1:9300";

fn setup(task_extra: &str, engine: &str, answer: Answer) -> Harness {
    let mut h = Harness::new();
    h.default.answer = answer;
    let json = format!(
        r#"{{"type": "python", "args": "local:///srv/raw", "engine": {{{engine}}},
            "tasks": {{"raw": {{"type": "raw-server", "endpoint": "{EP}"{task_extra}}}}}}}"#
    );
    h.deploy("raw", &json);
    assert!(
        h.binds
            .iter()
            .any(|(_, kind, address)| *kind == SocketKind::Tcp && address == EP),
        "no TCP listener asked for: {:?}",
        h.binds
    );
    h.fresh();
    h
}

fn line(engine: &str, answer: Answer) -> Harness {
    setup(r#", "framing": "line""#, engine, answer)
}

fn accept(h: &mut Harness, conn: u64) -> ConnId {
    let conn = ConnId(conn);
    let endpoint = h.endpoint(EP);
    h.input(Input::Accepted {
        endpoint,
        conn,
        peer: format!("127.0.0.1:{}", 40000 + conn.0),
    });
    conn
}

fn data(h: &mut Harness, conn: ConnId, bytes: &[u8]) {
    h.input(Input::ConnData {
        conn,
        bytes: Bytes::copy_from_slice(bytes),
    });
}

/// Bytes written to `conn` in these outputs, joined, and whether it was closed (last).
fn written(outputs: &[Output], conn: ConnId) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let mut closed = false;
    for o in outputs {
        match o {
            Output::ConnSend { conn: c, bytes: b } if *c == conn => {
                assert!(!closed, "bytes written to {conn} after its close");
                bytes.extend_from_slice(b);
            }
            Output::ConnClose { conn: c } if *c == conn => closed = true,
            _ => {}
        }
    }
    (bytes, closed)
}

fn length_frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn line_requests_are_jobs_and_replies_are_lines() {
    let mut h = line("", Answer::Echo);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"hello\r\n\nworld\n");
    assert_eq!(
        written(&h.fresh(), c),
        (b"hello\n\nworld\n".to_vec(), false)
    );
    let (w, sid) = h.invokes[0];
    match &h.worker(w).messages()[0] {
        WorkerMessage::Invoke {
            sid: s,
            event,
            meta,
        } => {
            assert_eq!((*s, event.as_str()), (sid, "raw"));
            assert_eq!(meta.peer.as_deref(), Some("127.0.0.1:40001"));
        }
        other => panic!("expected an invoke, got {other:?}"),
    }
    assert_eq!(h.invokes.len(), 3, "an empty line is a job too");
}

#[test]
fn input_split_anywhere_gives_the_same_requests() {
    let stream = b"alpha\r\nbeta\n\ngamma\n";
    let mut whole = line("", Answer::Echo);
    let c = accept(&mut whole, 1);
    data(&mut whole, c, stream);
    let expected = written(&whole.fresh(), c);
    for size in 1..stream.len() {
        let mut h = line("", Answer::Echo);
        let c = accept(&mut h, 1);
        for piece in stream.chunks(size) {
            data(&mut h, c, piece);
        }
        assert_eq!(written(&h.fresh(), c), expected, "pieces of {size} bytes");
    }
}

#[test]
fn replies_keep_request_order_when_jobs_end_out_of_order() {
    let mut h = line(r#""pool-limit": 1, "concurrency": 3"#, Answer::Manual);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"first\nsecond\nthird\n");
    assert_eq!(h.invokes.len(), 3);
    let sids: Vec<(cocaine_core::WorkerId, u64)> = h.invokes.clone();
    h.fresh();
    h.worker_replies(sids[2].0, sids[2].1, &[b"3"]);
    h.worker_replies(sids[1].0, sids[1].1, &[b"2"]);
    assert_eq!(written(&h.fresh(), c).0, b"", "a later reply went first");
    h.worker_replies(sids[0].0, sids[0].1, &[b"1"]);
    assert_eq!(written(&h.fresh(), c), (b"1\n2\n3\n".to_vec(), false));
}

#[test]
fn connections_are_independent() {
    let mut h = line(r#""pool-limit": 1, "concurrency": 4"#, Answer::Manual);
    let a = accept(&mut h, 1);
    let b = accept(&mut h, 2);
    data(&mut h, a, b"a1\n");
    data(&mut h, b, b"b1\n");
    let sids = h.invokes.clone();
    h.fresh();
    // b's reply does not wait for a's.
    h.worker_replies(sids[1].0, sids[1].1, &[b"B"]);
    let out = h.fresh();
    assert_eq!(written(&out, b).0, b"B\n");
    assert_eq!(written(&out, a).0, b"");
    h.worker_replies(sids[0].0, sids[0].1, &[b"A"]);
    assert_eq!(written(&h.fresh(), a).0, b"A\n");
}

#[test]
fn an_error_is_an_error_line_in_its_turn() {
    let mut h = line("", Answer::Fail(502, "boom\nagain".into()));
    let c = accept(&mut h, 1);
    data(&mut h, c, b"x\n");
    assert_eq!(
        written(&h.fresh(), c),
        (b"ERROR 502 boom again\n".to_vec(), false)
    );
}

#[test]
fn a_full_queue_answers_503_in_order() {
    let mut h = line(r#""pool-limit": 1, "queue-limit": 1"#, Answer::Manual);
    let c = accept(&mut h, 1);
    // The first runs once the worker is up; then one waits in the queue; the third is refused.
    data(&mut h, c, b"runs\n");
    data(&mut h, c, b"waits\nrefused\n");
    assert_eq!(
        written(&h.fresh(), c).0,
        b"",
        "the 503 went before earlier replies"
    );
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[b"one"]);
    assert_eq!(written(&h.fresh(), c).0, b"one\n");
    let (w, sid) = h.invokes[1];
    h.worker_replies(w, sid, &[b"two"]);
    let (bytes, closed) = written(&h.fresh(), c);
    assert!(!closed);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("two\nERROR 503 "), "{text:?}");
}

#[test]
fn a_line_over_max_line_gets_413_after_earlier_replies_then_the_close() {
    let mut h = setup(r#", "framing": "line", "max-line": 8"#, "", Answer::Echo);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"12345678\n");
    data(&mut h, c, b"123456789");
    let (bytes, closed) = written(&h.fresh(), c);
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.starts_with("12345678\nERROR 413 line longer than the limit of 8 bytes"),
        "{text:?}"
    );
    assert!(text.ends_with('\n'));
    assert!(closed);
    assert_eq!(h.invokes.len(), 1, "the long line became a job");
    data(&mut h, c, b"more\n");
    assert_eq!(written(&h.fresh(), c), (Vec::new(), false));
    assert_eq!(h.invokes.len(), 1);
}

#[test]
fn a_client_that_leaves_mid_request_has_its_jobs_cancelled_and_gets_nothing() {
    for gone in [
        Input::ConnEof { conn: ConnId(1) },
        Input::ConnClosed { conn: ConnId(1) },
    ] {
        let mut h = line(r#""concurrency": 2"#, Answer::Manual);
        let c = accept(&mut h, 1);
        data(&mut h, c, b"slow\nhalf a li");
        let (w, sid) = h.invokes[0];
        h.fresh();
        let eof = matches!(gone, Input::ConnEof { .. });
        h.input(gone);
        assert!(
            h.worker(w)
                .messages()
                .contains(&WorkerMessage::Cancel { sid }),
            "the job was not cancelled"
        );
        h.worker_replies(w, sid, &[b"late"]);
        // After an end of file the node closes its side; after a reset it is already gone.
        assert_eq!(written(&h.fresh(), c), (Vec::new(), eof));
        // The node serves the next client.
        let d = accept(&mut h, 2);
        data(&mut h, d, b"next\n");
        let (w, sid) = *h.invokes.last().unwrap();
        h.worker_replies(w, sid, &[b"ok"]);
        assert_eq!(written(&h.fresh(), d).0, b"ok\n");
    }
}

#[test]
fn length_frames_in_any_split_and_replies_with_status() {
    let mut h = setup(r#", "framing": "length""#, "", Answer::Echo);
    let c = accept(&mut h, 1);
    let stream = [
        length_frame(b"hi"),
        length_frame(b""),
        length_frame(b"there"),
    ]
    .concat();
    for byte in &stream {
        data(&mut h, c, &[*byte]);
    }
    let expected = [
        length_frame(b"\0hi"),
        length_frame(b"\0"),
        length_frame(b"\0there"),
    ]
    .concat();
    assert_eq!(written(&h.fresh(), c), (expected, false));
}

#[test]
fn a_length_frame_over_max_message_gets_413_and_the_close() {
    let mut h = setup(
        r#", "framing": "length", "max-message": 16"#,
        "",
        Answer::Echo,
    );
    let c = accept(&mut h, 1);
    data(&mut h, c, &[length_frame(b"ok"), vec![0, 0, 1, 0]].concat());
    let (bytes, closed) = written(&h.fresh(), c);
    assert!(closed);
    assert_eq!(&bytes[..7], &length_frame(b"\0ok")[..]);
    let error = &bytes[7..];
    assert_eq!(usize::from(error[3]) + 4, error.len());
    assert_eq!(error[4], 1);
    let text = std::str::from_utf8(&error[5..]).unwrap();
    assert!(text.starts_with("413 frame of 256 bytes"), "{text:?}");
}

#[test]
fn a_worker_error_in_length_framing() {
    let mut h = setup(
        r#", "framing": "length""#,
        "",
        Answer::Fail(404, "no handler".into()),
    );
    let c = accept(&mut h, 1);
    data(&mut h, c, &length_frame(b"x"));
    assert_eq!(
        written(&h.fresh(), c),
        (length_frame(b"\x01404 no handler"), false)
    );
}

#[test]
fn a_stream_connection_is_one_job_streamed_both_ways() {
    let mut h = setup(r#", "framing": "stream""#, "", Answer::Manual);
    let c = accept(&mut h, 1);
    let (w, sid) = h.invokes[0];
    data(&mut h, c, b"part one,");
    data(&mut h, c, b" part two");
    h.fresh();
    h.worker_says(
        w,
        &[WorkerMessage::Chunk {
            sid,
            data: b(b"early "),
        }],
    );
    assert_eq!(written(&h.fresh(), c), (b"early ".to_vec(), false));
    h.input(Input::ConnEof { conn: c });
    let got = h.worker(w).messages_no_heartbeat();
    assert_eq!(
        got[1..],
        [
            WorkerMessage::Chunk {
                sid,
                data: b(b"part one,")
            },
            WorkerMessage::Chunk {
                sid,
                data: b(b" part two")
            },
            WorkerMessage::Choke { sid },
        ]
    );
    h.worker_replies(w, sid, &[b"a", b"b"]);
    assert_eq!(written(&h.fresh(), c), (b"ab".to_vec(), true));
}

#[test]
fn a_stream_error_closes_at_once_and_a_reset_cancels() {
    let mut h = setup(
        r#", "framing": "stream""#,
        "",
        Answer::Fail(502, "no".into()),
    );
    let c = accept(&mut h, 1);
    data(&mut h, c, b"abc");
    h.input(Input::ConnEof { conn: c });
    assert_eq!(written(&h.fresh(), c), (Vec::new(), true));

    let mut h = setup(r#", "framing": "stream""#, "", Answer::Manual);
    let c = accept(&mut h, 1);
    let (w, sid) = h.invokes[0];
    h.input(Input::ConnClosed { conn: c });
    assert!(h
        .worker(w)
        .messages()
        .contains(&WorkerMessage::Cancel { sid }));
    h.worker_replies(w, sid, &[b"late"]);
    assert_eq!(written(&h.fresh(), c), (Vec::new(), false));
}

#[test]
fn a_stream_over_max_message_is_closed() {
    let mut h = setup(
        r#", "framing": "stream", "max-message": 4"#,
        "",
        Answer::Manual,
    );
    let c = accept(&mut h, 1);
    let (w, sid) = h.invokes[0];
    data(&mut h, c, b"1234");
    data(&mut h, c, b"5");
    assert_eq!(written(&h.fresh(), c), (Vec::new(), true));
    assert!(h
        .worker(w)
        .messages()
        .contains(&WorkerMessage::Cancel { sid }));
}

#[test]
fn removing_the_app_closes_its_connections() {
    let mut h = line("", Answer::Echo);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"x\n");
    h.fresh();
    h.input(Input::Remove {
        app: "raw".into(),
        origin: cocaine_core::node::AppOrigin::CommandLine,
    });
    h.advance(std::time::Duration::from_secs(10));
    let out = h.all();
    assert!(written(&out, c).1, "the connection stayed open");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Unbind { endpoint } if *endpoint == h.endpoint(EP))));
}

#[test]
fn a_redeploy_keeps_the_listener_and_open_connections() {
    let mut h = line(r#""pool-limit": 1, "concurrency": 2"#, Answer::Manual);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"old\n");
    let (w_old, sid_old) = h.invokes[0];
    let binds = h.binds.len();
    h.deploy(
        "raw",
        &format!(
            r#"{{"type": "python", "args": "local:///srv/raw", "version": 2,
                "tasks": {{"raw": {{"type": "raw-server", "endpoint": "{EP}", "framing": "line"}}}}}}"#
        ),
    );
    assert_eq!(h.binds.len(), binds, "the shared listener was bound again");
    data(&mut h, c, b"new\n");
    let (w_new, sid_new) = *h.invokes.last().unwrap();
    assert_ne!(w_new, w_old, "the new request went to the old version");
    h.fresh();
    h.worker_replies(w_new, sid_new, &[b"from new"]);
    assert_eq!(written(&h.fresh(), c).0, b"", "out of order");
    h.worker_replies(w_old, sid_old, &[b"from old"]);
    assert_eq!(written(&h.fresh(), c).0, b"from old\nfrom new\n");
}
