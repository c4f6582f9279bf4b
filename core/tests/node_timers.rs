//! recurring-timer, drifting-timer and the stats publication, through a hand-driven node.

use crate::harness;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::{Input, Output};
use harness::*;
use serde_json::json;

const PUBSUB: &str = "tcp://127.0.0.1:9100";

fn timer_app(task: &str, stats_ms: u64) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/t",
            "pubsub": {{"endpoint": "{PUBSUB}", "interval": {stats_ms}}},
            "tasks": {{"tick": {task}}}}}"#
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// When each invoke reached a worker, in ms since the start, in order.
fn invoke_times(h: &Harness) -> Vec<u64> {
    let mut times: Vec<u64> = h
        .workers
        .values()
        .flat_map(|w| w.received.iter())
        .filter(|(_, m)| matches!(m, WorkerMessage::Invoke { .. }))
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    times.sort_unstable();
    times
}

#[test]
fn recurring_timer_fires_on_a_grid_and_publishes_each_field() {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![b(br#"{"a":1,"b":"x"}"#)]);
    h.deploy(
        "app",
        &timer_app(r#"{"type": "recurring-timer", "interval": 1000}"#, 60_000),
    );
    let pubsub = h.endpoint(PUBSUB);
    h.advance_to(ms(999));
    assert!(invoke_times(&h).is_empty(), "fired before one interval");
    h.fresh();
    h.advance_to(ms(1000));
    assert_eq!(invoke_times(&h), vec![1000]);
    let out = h.fresh();
    assert_eq!(
        published(&out, "app:tick"),
        vec![
            (topic("app", "tick", "a", 1000), json!(1)),
            (topic("app", "tick", "b", 1000), json!("x")),
        ]
    );
    assert_eq!(
        topic("app", "tick", "a", 1000),
        "app:tick a testhost 1700000001.000"
    );
    // Raw frames: topic, then the JSON text.
    assert!(out.contains(&Output::Publish {
        endpoint: pubsub,
        topic: Bytes::from("app:tick b testhost 1700000001.000"),
        value: Bytes::from("\"x\""),
    }));
    h.advance_to(ms(2500));
    assert_eq!(invoke_times(&h), vec![1000, 2000]);
    // The worker got no request body: an invoke, then the end of the request.
    let w = h.last_worker("app");
    let (_, sid) = h.invokes[0];
    assert_eq!(
        h.worker(w).messages_no_heartbeat()[1],
        WorkerMessage::Choke { sid }
    );
}

#[test]
fn immediate_recurring_timer_fires_at_start_too() {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![]);
    h.deploy(
        "app",
        &timer_app(
            r#"{"type": "recurring-timer", "interval": 1000, "immediate": true}"#,
            60_000,
        ),
    );
    assert_eq!(invoke_times(&h), vec![0]);
    h.advance_to(ms(2000));
    assert_eq!(invoke_times(&h), vec![0, 1000, 2000]);
    // An empty reply publishes nothing.
    assert!(published(&h.all(), "app:tick").is_empty());
}

#[test]
fn recurring_timer_stays_on_its_grid_when_a_run_is_slow() {
    let mut h = Harness::new();
    h.default.answer = Answer::Manual;
    h.deploy(
        "app",
        &timer_app(r#"{"type": "recurring-timer", "interval": 1000}"#, 60_000),
    );
    h.advance_to(ms(1000));
    h.advance_to(ms(1700));
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[b"late"]);
    h.advance_to(ms(3000));
    // Runs overlap (the first was still running at 2000): a second worker took it.
    assert_eq!(invoke_times(&h), vec![1000, 2000, 3000]);
    assert_eq!(
        published(&h.all(), "app:tick"),
        vec![(topic("app", "tick", "result", 1700), json!("late"))]
    );
}

#[test]
fn a_non_json_reply_is_published_as_a_result_string() {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![b(b"hello "), b(b"world")]);
    h.deploy(
        "app",
        &timer_app(r#"{"type": "recurring-timer", "interval": 1000}"#, 60_000),
    );
    h.advance_to(ms(1000));
    assert_eq!(
        published(&h.all(), "app:tick"),
        vec![(topic("app", "tick", "result", 1000), json!("hello world"))]
    );
}

#[test]
fn an_error_is_published_as_an_engine_error() {
    let mut h = Harness::new();
    h.default.answer = Answer::Fail(502, "boom".into());
    h.deploy(
        "app",
        &timer_app(r#"{"type": "recurring-timer", "interval": 1000}"#, 60_000),
    );
    h.advance_to(ms(1000));
    let all = h.all();
    assert!(published(&all, "app:tick").is_empty());
    assert_eq!(
        published(&all, "app:engine error"),
        vec![(
            topic("app", "engine", "error", 1000),
            json!({"code": 502, "message": "boom", "task": "tick"})
        )]
    );
}

#[test]
fn drifting_timer_counts_its_interval_from_the_end_of_the_previous_run() {
    let mut h = Harness::new();
    h.default.answer = Answer::Manual;
    h.deploy(
        "app",
        &timer_app(r#"{"type": "drifting-timer", "interval": 1000}"#, 60_000),
    );
    h.advance_to(ms(1000));
    assert_eq!(invoke_times(&h), vec![1000]);
    // A slow run: nothing else starts while it runs.
    h.advance_to(ms(1500));
    assert_eq!(invoke_times(&h), vec![1000]);
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[b"{}"]);
    h.advance_to(ms(2499));
    assert_eq!(
        invoke_times(&h),
        vec![1000],
        "fired on a grid, not after the end"
    );
    h.advance_to(ms(2500));
    assert_eq!(invoke_times(&h), vec![1000, 2500]);
    h.advance_to(ms(2800));
    let (w, sid) = h.invokes[1];
    h.worker_replies(w, sid, &[]);
    h.advance_to(ms(3799));
    assert_eq!(invoke_times(&h), vec![1000, 2500]);
    h.advance_to(ms(3800));
    assert_eq!(invoke_times(&h), vec![1000, 2500, 3800]);
}

#[test]
fn stats_are_published_every_interval() {
    let mut h = Harness::new();
    h.default.answer = Answer::Manual;
    let json = format!(
        r#"{{"type": "python", "args": "local:///srv/s",
            "engine": {{"pool-limit": 1}},
            "pubsub": {{"endpoint": "{PUBSUB}", "interval": 500}},
            "tasks": {{"serve": {{"type": "native-server", "endpoint": "tcp://127.0.0.1:9003"}}}}}}"#
    );
    h.deploy("app", &json);
    let ep = h.endpoint("tcp://127.0.0.1:9003");
    h.receive(ep, vec![b(b"c"), open(1, ""), choke(1)]);
    h.receive(ep, vec![b(b"c"), open(2, ""), choke(2)]);
    h.advance_to(ms(499));
    assert!(published(&h.all(), "app:engine stats").is_empty());
    h.advance_to(ms(1000));
    let stats = published(&h.all(), "app:engine stats");
    assert_eq!(stats.len(), 2, "{stats:?}");
    assert_eq!(stats[0].0, topic("app", "engine", "stats", 500));
    assert_eq!(stats[1].0, topic("app", "engine", "stats", 1000));
    let s = &stats[1].1;
    assert_eq!(s["queue"], json!(1));
    assert_eq!(
        s["workers"],
        json!({"starting": 0, "ready": 1, "idle": 0, "busy": 1, "draining": 0, "total": 1})
    );
    assert_eq!(s["jobs"], json!({"running": 1}));
    assert_eq!(s["tasks"]["serve"]["accepted"], json!(2));
    assert_eq!(s["state"], json!("running"));
}

#[test]
fn a_drifting_run_ending_while_the_app_stops_does_not_rearm_the_timer() {
    let mut h = Harness::new();
    h.default = Behaviour {
        handshake: true,
        answer: Answer::Manual,
        obey: false,
    };
    h.deploy(
        "app",
        r#"{"type": "python", "args": "local:///srv/t", "engine": {"termination-timeout": 30},
            "tasks": {"tick": {"type": "drifting-timer", "interval": 1000}}}"#,
    );
    h.advance_to(ms(1000));
    let (w, sid) = h.invokes[0];
    h.input(cocaine_core::node::Input::Remove {
        app: "app".into(),
        origin: cocaine_core::node::AppOrigin::CommandLine,
    });
    h.fresh();
    // The running job ends while the app is stopping (its worker still finishing).
    h.worker_replies(w, sid, &[]);
    h.advance_to(ms(6000));
    let out = h.fresh();
    let refused: Vec<String> = logs(&out)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("timer job refused"))
        .collect();
    assert_eq!(refused, Vec::<String>::new());
    assert_eq!(invoke_times(&h), vec![1000]);
}

/// Timers are not visited on every input any more: each input fires only what is due by its
/// time, in every app, and leaves nothing due behind for a tick to find.
#[test]
fn any_input_fires_every_app_timer_due_by_its_time_and_nothing_early() {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![]);
    let app = |interval: u64| {
        format!(
            r#"{{"type": "python", "args": "local:///srv/t", "engine": {{"pool-min": 1}},
                "tasks": {{"tick": {{"type": "recurring-timer", "interval": {interval}}}}}}}"#
        )
    };
    h.deploy("slow", &app(1000));
    h.deploy("busy", &app(60_000));
    let busy = h.last_worker("busy");
    // Inputs for `busy` only, never a tick, at times of the test's choosing.
    for t in [100, 999, 1000, 1001, 1999, 2000, 2001] {
        let at = h.start + ms(t);
        h.now = h.now + (at - h.now.mono);
        let line = format!("line at {t}");
        h.node
            .handle_input(h.now, Input::WorkerStderr { worker: busy, line });
        assert!(
            h.node.poll_timeout().is_none_or(|due| due > h.now.mono),
            "a timer due by {t} ms was left for a tick"
        );
        h.pump();
    }
    let slow: Vec<u64> = h
        .workers_of("slow")
        .iter()
        .flat_map(|w| h.worker(*w).received.iter())
        .filter(|(_, m)| matches!(m, WorkerMessage::Invoke { .. }))
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    assert_eq!(slow, vec![1000, 2000]);
}
