//! The echo worker as a real child process against a fake node, checked byte for byte.

mod fake_node;

use std::process::Command;
use std::time::{Duration, Instant};

use cocaine_core::codec::worker::{self, JobMeta, WorkerMessage};
use fake_node::{choke, chunk, FakeNode, Got, PATIENCE};

fn error_of(msg: WorkerMessage) -> (u64, u32, String) {
    match msg {
        WorkerMessage::Error { sid, code, message } => (sid, code, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn handshake_comes_first_with_id_version_and_pid() {
    let mut node = FakeNode::start();
    let pid = node.child.id();
    assert_eq!(
        node.expect(),
        WorkerMessage::Handshake {
            worker_id: "w-test".into(),
            version: 1,
            pid,
        }
    );
}

#[test]
fn echo_joins_the_request_chunks_into_one_reply() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "echo", &[b"hel", b"lo"]);
    assert_eq!(node.expect(), chunk(1, b"hello"));
    assert_eq!(node.expect(), choke(1));
    // An empty request is `b""`, echoed as one empty chunk.
    node.job(2, "echo", &[]);
    assert_eq!(node.expect(), chunk(2, b""));
    assert_eq!(node.expect(), choke(2));
}

#[test]
fn streaming_replies_each_chunk_before_the_request_ends() {
    let mut node = FakeNode::start();
    node.handshake();
    node.send(|b| worker::encode_invoke(b, 7, "stream_echo", &JobMeta::default()));
    for part in [&b"one"[..], b"two", b"three"] {
        node.send(|b| worker::encode_chunk(b, 7, part));
        assert_eq!(node.expect(), chunk(7, part));
    }
    node.send(|b| worker::encode_choke(b, 7));
    assert_eq!(node.expect(), choke(7));
}

#[test]
fn unknown_event_is_404_for_that_job_only() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "nope", &[b"x"]);
    let (sid, code, message) = error_of(node.expect());
    assert_eq!((sid, code), (1, 404));
    assert!(message.contains("nope"), "{message}");
    node.job(2, "echo", &[b"y"]);
    assert_eq!(node.expect(), chunk(2, b"y"));
    assert_eq!(node.expect(), choke(2));
}

#[test]
fn handler_errors_carry_their_code_or_502() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "fail", &[b"418"]);
    assert_eq!(error_of(node.expect()), (1, 418, "failed with 418".into()));
    node.job(2, "fail", &[b"why"]);
    let (sid, code, _) = error_of(node.expect());
    assert_eq!((sid, code), (2, 502));
    // `?` on a parse error in a handler is a 502 too.
    node.job(3, "sleep", &[b"soon"]);
    let (sid, code, _) = error_of(node.expect());
    assert_eq!((sid, code), (3, 502));
}

#[test]
fn a_panic_is_502_with_its_message_and_the_worker_stays_up() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "panic", &[]);
    assert_eq!(error_of(node.expect()), (1, 502, "asked to panic".into()));
    node.job(2, "echo", &[b"still here"]);
    assert_eq!(node.expect(), chunk(2, b"still here"));
    assert_eq!(node.expect(), choke(2));
}

#[test]
fn jobs_overlap() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "sleep", &[b"400"]);
    node.job(2, "echo", &[b"quick"]);
    // The quick job overtakes the sleeping one: it ran on its own thread.
    assert_eq!(node.expect(), chunk(2, b"quick"));
    assert_eq!(node.expect(), choke(2));
    assert_eq!(node.expect(), chunk(1, b"400"));
    assert_eq!(node.expect(), choke(1));
}

#[test]
fn cancel_answers_499_once_and_drops_later_output() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "sleep", &[b"200"]);
    node.send(|b| worker::encode_cancel(b, 1));
    assert_eq!(error_of(node.expect()), (1, 499, "cancelled".into()));
    node.send(|b| worker::encode_cancel(b, 1));
    // Job 2 starts after job 1 and sleeps longer, so anything job 1 still sent would come
    // before it.
    node.job(2, "sleep", &[b"400"]);
    assert_eq!(node.expect(), chunk(2, b"400"));
    assert_eq!(node.expect(), choke(2));
    // A cancel for a finished job sends nothing.
    node.send(|b| worker::encode_cancel(b, 2));
    node.job(3, "echo", &[b"z"]);
    assert_eq!(node.expect(), chunk(3, b"z"));
}

#[test]
fn cancel_ends_a_streaming_job_whose_request_is_still_open() {
    let mut node = FakeNode::start();
    node.handshake();
    node.send(|b| {
        worker::encode_invoke(b, 4, "stream_echo", &JobMeta::default());
        worker::encode_chunk(b, 4, b"a");
    });
    assert_eq!(node.expect(), chunk(4, b"a"));
    node.send(|b| {
        worker::encode_cancel(b, 4);
        worker::encode_chunk(b, 4, b"late");
        worker::encode_choke(b, 4);
    });
    assert_eq!(error_of(node.expect()), (4, 499, "cancelled".into()));
    node.job(5, "echo", &[b"next"]);
    assert_eq!(node.expect(), chunk(5, b"next"));
    assert_eq!(node.expect(), choke(5));
}

#[test]
fn terminate_finishes_the_running_job_then_exits_0() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "sleep", &[b"300"]);
    node.send(|b| worker::encode_terminate(b, "bye"));
    // No new jobs once terminating.
    node.job(2, "echo", &[b"no"]);
    assert_eq!(error_of(node.expect()).1, 503);
    assert_eq!(node.expect(), chunk(1, b"300"));
    assert_eq!(node.expect(), choke(1));
    assert_eq!(node.recv(PATIENCE), Got::Eof);
    let status = node.wait_exit(PATIENCE).expect("the worker did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn terminate_waits_for_a_plain_request_still_arriving() {
    let mut node = FakeNode::start();
    node.handshake();
    node.send(|b| {
        worker::encode_invoke(b, 1, "echo", &JobMeta::default());
        worker::encode_chunk(b, 1, b"half");
        worker::encode_terminate(b, "bye");
    });
    node.expect_nothing(Duration::from_millis(100));
    node.send(|b| worker::encode_choke(b, 1));
    assert_eq!(node.expect(), chunk(1, b"half"));
    assert_eq!(node.expect(), choke(1));
    let status = node.wait_exit(PATIENCE).expect("the worker did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn heartbeats_come_every_interval() {
    let mut node = FakeNode::start_with(&[("COCAINE_HEARTBEAT_MS", "100")]);
    node.handshake();
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(
            node.recv(Duration::from_millis(600)),
            Got::Msg(WorkerMessage::Heartbeat)
        );
    }
    // Three beats 100 ms apart cannot come much faster than 200 ms.
    assert!(start.elapsed() >= Duration::from_millis(190));
}

#[test]
fn exits_when_the_node_is_silent_past_the_timeout() {
    let mut node = FakeNode::start_with(&[
        ("COCAINE_HEARTBEAT_MS", "50"),
        ("COCAINE_TIMEOUT_MS", "300"),
    ]);
    node.handshake();
    // Answering each heartbeat keeps it alive well past the timeout...
    let alive_since = Instant::now();
    while alive_since.elapsed() < Duration::from_millis(700) {
        assert_eq!(node.recv(PATIENCE), Got::Msg(WorkerMessage::Heartbeat));
        node.send(worker::encode_heartbeat);
    }
    assert!(node.child.try_wait().unwrap().is_none());
    // ...and silence ends it.
    let silent_since = Instant::now();
    let status = node.wait_exit(PATIENCE).expect("the worker did not exit");
    assert!(!status.success(), "{status}");
    assert!(silent_since.elapsed() >= Duration::from_millis(200));
}

#[test]
fn exits_at_once_on_eof() {
    let mut node = FakeNode::start();
    node.handshake();
    node.job(1, "sleep", &[b"5000"]);
    let start = Instant::now();
    node.hang_up();
    let status = node.wait_exit(PATIENCE).expect("the worker did not exit");
    assert!(status.success(), "{status}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_bad_message_is_dropped_and_the_worker_goes_on() {
    let mut node = FakeNode::start();
    node.handshake();
    node.send(|b| {
        // A frame holding msgpack `[99]`: an unknown kind.
        cocaine_core::codec::write_frame(b, &[0x91, 0x63]);
        // A frame that is not msgpack at all.
        cocaine_core::codec::write_frame(b, &[0xc1]);
    });
    node.job(1, "echo", &[b"ok"]);
    assert_eq!(node.expect(), chunk(1, b"ok"));
    assert_eq!(node.expect(), choke(1));
}

#[test]
fn missing_socket_is_a_named_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cocaine-echo-worker"))
        .env_remove("COCAINE_SOCKET")
        .env("COCAINE_WORKER_ID", "w")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("COCAINE_SOCKET"), "{stderr}");
}

#[test]
fn many_jobs_waiting_for_their_requests_do_not_block_the_others() {
    let mut node = FakeNode::start();
    node.handshake();
    // Twenty handlers blocked on their request streams at once, each on its own thread.
    for sid in 1..=20 {
        node.send(|b| worker::encode_invoke(b, sid, "stream_echo", &JobMeta::default()));
    }
    node.job(100, "echo", &[b"through"]);
    assert_eq!(node.expect(), chunk(100, b"through"));
    assert_eq!(node.expect(), choke(100));
    for sid in (1..=20).rev() {
        node.send(|b| {
            worker::encode_chunk(b, sid, &sid.to_be_bytes());
            worker::encode_choke(b, sid);
        });
        assert_eq!(node.expect(), chunk(sid, &sid.to_be_bytes()));
        assert_eq!(node.expect(), choke(sid));
    }
}
