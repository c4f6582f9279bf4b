//! The echo worker in inline mode (`COCAINE_INLINE=1`, [`cocaine_worker::Worker::inline`])
//! against a fake node: plain jobs run one at a time on the reading thread.

// Shared with `worker.rs`; this file does not use every helper.
#[allow(dead_code)]
mod fake_node;

use std::time::{Duration, Instant};

use cocaine_core::codec::worker::{self, JobMeta, WorkerMessage};
use fake_node::{choke, chunk, FakeNode, Got, PATIENCE};

fn inline_node(env: &[(&str, &str)]) -> FakeNode {
    let mut all = vec![("COCAINE_INLINE", "1")];
    all.extend_from_slice(env);
    let mut node = FakeNode::start_with(&all);
    node.handshake();
    node
}

fn error_of(msg: WorkerMessage) -> (u64, u32, String) {
    match msg {
        WorkerMessage::Error { sid, code, message } => (sid, code, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn jobs_are_answered_in_order_even_when_the_first_is_slow() {
    let mut node = inline_node(&[]);
    node.job(1, "sleep", &[b"200"]);
    node.job(2, "echo", &[b"quick"]);
    // No overtaking: the quick job waits for the reader, which runs the slow one.
    assert_eq!(node.expect(), chunk(1, b"200"));
    assert_eq!(node.expect(), choke(1));
    assert_eq!(node.expect(), chunk(2, b"quick"));
    assert_eq!(node.expect(), choke(2));
}

#[test]
fn a_batch_of_jobs_in_one_write_is_answered_in_order() {
    let mut node = inline_node(&[]);
    node.send(|b| {
        for sid in 1..=100u64 {
            worker::encode_invoke(b, sid, "echo", &JobMeta::default());
            worker::encode_chunk(b, sid, &sid.to_be_bytes());
            worker::encode_choke(b, sid);
        }
    });
    for sid in 1..=100u64 {
        assert_eq!(node.expect(), chunk(sid, &sid.to_be_bytes()));
        assert_eq!(node.expect(), choke(sid));
    }
}

#[test]
fn a_panic_is_502_and_the_next_job_works() {
    let mut node = inline_node(&[]);
    node.job(1, "panic", &[]);
    node.job(2, "echo", &[b"still here"]);
    assert_eq!(error_of(node.expect()), (1, 502, "asked to panic".into()));
    assert_eq!(node.expect(), chunk(2, b"still here"));
    assert_eq!(node.expect(), choke(2));
    node.job(3, "fail", &[b"418"]);
    assert_eq!(error_of(node.expect()), (3, 418, "failed with 418".into()));
}

#[test]
fn heartbeats_flow_while_a_slow_inline_handler_runs() {
    let mut node = inline_node(&[("COCAINE_HEARTBEAT_MS", "100")]);
    node.job(1, "sleep", &[b"600"]);
    let start = Instant::now();
    let mut beats = 0;
    loop {
        match node.recv(PATIENCE) {
            Got::Msg(WorkerMessage::Heartbeat) => beats += 1,
            Got::Msg(msg) => {
                assert_eq!(msg, chunk(1, b"600"));
                break;
            }
            other => panic!("expected a heartbeat or the reply, got {other:?}"),
        }
    }
    assert!(start.elapsed() >= Duration::from_millis(550));
    assert!(
        beats >= 3,
        "only {beats} heartbeats during a 600 ms handler"
    );
    loop {
        match node.expect() {
            WorkerMessage::Heartbeat => {}
            msg => break assert_eq!(msg, choke(1)),
        }
    }
}

#[test]
fn a_cancel_waits_for_the_running_job_and_then_finds_it_done() {
    let mut node = inline_node(&[]);
    node.job(1, "sleep", &[b"200"]);
    node.send(|b| worker::encode_cancel(b, 1));
    node.job(2, "echo", &[b"next"]);
    // The reader saw the cancel only after the job ended: its reply stands, no 499.
    assert_eq!(node.expect(), chunk(1, b"200"));
    assert_eq!(node.expect(), choke(1));
    assert_eq!(node.expect(), chunk(2, b"next"));
    assert_eq!(node.expect(), choke(2));
    node.expect_nothing(Duration::from_millis(100));
}

#[test]
fn a_cancel_before_the_request_ends_is_499() {
    let mut node = inline_node(&[]);
    node.send(|b| {
        worker::encode_invoke(b, 1, "echo", &JobMeta::default());
        worker::encode_chunk(b, 1, b"half");
        worker::encode_cancel(b, 1);
        worker::encode_choke(b, 1);
    });
    assert_eq!(error_of(node.expect()), (1, 499, "cancelled".into()));
    node.job(2, "echo", &[b"z"]);
    assert_eq!(node.expect(), chunk(2, b"z"));
    assert_eq!(node.expect(), choke(2));
}

#[test]
fn streaming_handlers_still_run_on_their_own_threads() {
    let mut node = inline_node(&[]);
    node.send(|b| worker::encode_invoke(b, 7, "stream_echo", &JobMeta::default()));
    for part in [&b"one"[..], b"two"] {
        node.send(|b| worker::encode_chunk(b, 7, part));
        assert_eq!(node.expect(), chunk(7, part));
    }
    // A plain job runs inline while the stream is still open.
    node.job(8, "echo", &[b"between"]);
    assert_eq!(node.expect(), chunk(8, b"between"));
    assert_eq!(node.expect(), choke(8));
    node.send(|b| worker::encode_choke(b, 7));
    assert_eq!(node.expect(), choke(7));
}

#[test]
fn terminate_exits_after_the_running_job() {
    let mut node = inline_node(&[]);
    node.job(1, "sleep", &[b"300"]);
    let start = Instant::now();
    node.send(|b| worker::encode_terminate(b, "bye"));
    // The reader is busy with job 1, so it reads the terminate after it, and then has nothing
    // in flight: the reply, then the end.
    assert_eq!(node.expect(), chunk(1, b"300"));
    assert_eq!(node.expect(), choke(1));
    assert_eq!(node.recv(PATIENCE), Got::Eof);
    assert!(start.elapsed() >= Duration::from_millis(250));
    let status = node.wait_exit(PATIENCE).expect("the worker did not exit");
    assert!(status.success(), "{status}");
}

#[test]
fn the_last_reply_before_a_terminate_in_the_same_write_is_sent() {
    let mut node = inline_node(&[]);
    node.send(|b| {
        worker::encode_invoke(b, 1, "echo", &JobMeta::default());
        worker::encode_chunk(b, 1, b"last");
        worker::encode_choke(b, 1);
        worker::encode_terminate(b, "bye");
    });
    assert_eq!(node.expect(), chunk(1, b"last"));
    assert_eq!(node.expect(), choke(1));
    assert_eq!(node.recv(PATIENCE), Got::Eof);
    let status = node.wait_exit(PATIENCE).expect("the worker did not exit");
    assert!(status.success(), "{status}");
}
