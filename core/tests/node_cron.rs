//! cron tasks through a hand-driven node: fires on the wall clock's seconds, in the task's
//! time zone, with each overlap rule.

use crate::harness;

use std::time::{Duration, UNIX_EPOCH};

use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::{AppOrigin, Input};
use harness::*;
use serde_json::json;

const PUBSUB: &str = "tcp://127.0.0.1:9100";

fn cron_app(tasks: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/c",
            "pubsub": {{"endpoint": "{PUBSUB}", "interval": 3600000}},
            "tasks": {tasks}}}"#
    )
}

fn every_second(overlap: &str) -> String {
    cron_app(&format!(
        r#"{{"tick": {{"type": "cron", "schedule": "* * * * * *", "overlap": "{overlap}"}}}}"#
    ))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A harness whose wall clock starts at `unix_ms`.
fn harness_at(unix_ms: u64) -> Harness {
    let mut h = Harness::new();
    h.now.wall = UNIX_EPOCH + ms(unix_ms);
    h
}

/// Every invoke as (ms since the start, event), in time order.
fn invokes(h: &Harness) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = h
        .workers
        .values()
        .flat_map(|w| w.received.iter())
        .filter_map(|(t, m)| match m {
            WorkerMessage::Invoke { event, .. } => Some((t.as_millis() as u64, event.clone())),
            _ => None,
        })
        .collect();
    all.sort();
    all
}

fn invoke_times(h: &Harness) -> Vec<u64> {
    invokes(h).into_iter().map(|(t, _)| t).collect()
}

fn skip_logs(h: &Harness) -> Vec<String> {
    logs(&h.all())
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("cron fire skipped"))
        .collect()
}

#[test]
fn fires_on_the_wall_clocks_seconds_and_publishes() {
    // The node starts 400 ms into a second: the first fire is 600 ms later.
    let mut h = harness_at(EPOCH_MS + 400);
    h.default.answer = Answer::Chunks(vec![b(br#"{"n":1}"#)]);
    h.deploy("app", &every_second("skip"));
    h.advance_to(ms(599));
    assert!(invoke_times(&h).is_empty());
    h.advance_to(ms(2600));
    assert_eq!(invoke_times(&h), vec![600, 1600, 2600]);
    let published = published(&h.all(), "app:tick");
    let stamps: Vec<&str> = published
        .iter()
        .map(|(t, _)| t.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        stamps,
        ["1700000001.000", "1700000002.000", "1700000003.000"]
    );
    assert_eq!(published[0].1, json!(1));
}

#[test]
fn five_fields_fire_on_the_minute() {
    // 1700000000 is 22:13:20 UTC: the next whole minute is 40 s away.
    let mut h = harness_at(EPOCH_MS);
    h.default.answer = Answer::Chunks(vec![]);
    h.deploy(
        "app",
        &cron_app(r#"{"m": {"type": "cron", "schedule": "* * * * *"}}"#),
    );
    h.advance_to(ms(100_000));
    assert_eq!(invoke_times(&h), vec![40_000, 100_000]);
}

#[test]
fn skip_drops_fires_while_the_previous_run_runs() {
    let mut h = harness_at(EPOCH_MS);
    h.default.answer = Answer::Manual;
    h.deploy("app", &every_second("skip"));
    h.advance_to(ms(1000));
    // The run takes 2.5 s: the fires at 2 s and 3 s find it running and are dropped.
    h.advance_to(ms(3500));
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[b"done"]);
    h.advance_to(ms(4000));
    assert_eq!(invoke_times(&h), vec![1000, 4000]);
    assert_eq!(skip_logs(&h).len(), 2);
    assert!(skip_logs(&h)[1].contains("app/tick") && skip_logs(&h)[1].contains("2 skipped so far"));
    // Nothing is made up later.
    let (w, sid) = h.invokes[1];
    h.worker_replies(w, sid, &[]);
    h.advance_to(ms(5500));
    assert_eq!(invoke_times(&h), vec![1000, 4000, 5000]);
}

#[test]
fn buffer_one_keeps_exactly_one_fire() {
    let mut h = harness_at(EPOCH_MS);
    h.default.answer = Answer::Manual;
    h.deploy("app", &every_second("buffer-one"));
    h.advance_to(ms(3500));
    // Fires at 2 s (kept) and 3 s (dropped) while the first run runs.
    assert_eq!(invoke_times(&h), vec![1000]);
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[]);
    // The kept fire runs as soon as the first run ends, and only it.
    assert_eq!(invoke_times(&h), vec![1000, 3500]);
    assert_eq!(skip_logs(&h).len(), 1);
    // The fire at 4 s finds that one running and is kept in turn.
    h.advance_to(ms(4200));
    let (w, sid) = h.invokes[1];
    h.worker_replies(w, sid, &[]);
    h.advance_to(ms(4300));
    assert_eq!(invoke_times(&h), vec![1000, 3500, 4200]);
}

#[test]
fn allow_overlaps_runs() {
    let mut h = harness_at(EPOCH_MS);
    h.default.answer = Answer::Manual;
    h.deploy("app", &every_second("allow"));
    h.advance_to(ms(3000));
    assert_eq!(invoke_times(&h), vec![1000, 2000, 3000]);
    // Each run went to its own worker (concurrency 1).
    let workers: std::collections::BTreeSet<_> = h.invokes.iter().map(|(w, _)| *w).collect();
    assert_eq!(workers.len(), 3);
    assert!(skip_logs(&h).is_empty());
}

#[test]
fn the_time_zone_is_respected() {
    // 2026-01-05 08:59:59 UTC; 09:00 in New York is 14:00 UTC (five hours on).
    let start = 1_767_603_599_000;
    let mut h = harness_at(start);
    h.default.answer = Answer::Chunks(vec![]);
    h.deploy(
        "app",
        &cron_app(
            r#"{"utc": {"type": "cron", "schedule": "0 9 * * *"},
                "ny": {"type": "cron", "schedule": "0 9 * * *", "timezone": "America/New_York"}}"#,
        ),
    );
    h.advance_to(ms(5 * 3600 * 1000 + 1000));
    assert_eq!(
        invokes(&h),
        vec![
            (1000, "utc".to_owned()),
            (5 * 3600 * 1000 + 1000, "ny".to_owned())
        ]
    );
}

#[test]
fn a_skipped_dst_time_fires_right_after_the_jump() {
    // Berlin, 2026-03-29 00:59:00 UTC (01:59 CET); at 01:00 UTC clocks jump to 03:00 CEST,
    // so 02:30 never happens and the daily 02:30 run comes at 03:00.
    let mut h = harness_at(1_774_745_940_000);
    h.default.answer = Answer::Chunks(vec![]);
    h.deploy(
        "app",
        &cron_app(
            r#"{"night": {"type": "cron", "schedule": "30 2 * * *", "timezone": "Europe/Berlin"}}"#,
        ),
    );
    h.advance_to(ms(120_000));
    assert_eq!(invoke_times(&h), vec![60_000]);
}

#[test]
fn a_wall_clock_set_back_delays_the_fire() {
    let mut h = harness_at(EPOCH_MS);
    h.default.answer = Answer::Chunks(vec![]);
    h.deploy(
        "app",
        &cron_app(r#"{"m": {"type": "cron", "schedule": "* * * * *"}}"#),
    );
    // 40 s to the next minute; the clock is set back 10 s on the way.
    h.advance_to(ms(20_000));
    h.now.wall -= ms(10_000);
    h.advance_to(ms(49_999));
    assert!(invoke_times(&h).is_empty());
    h.advance_to(ms(50_000));
    assert_eq!(invoke_times(&h), vec![50_000]);
}

#[test]
fn a_late_fire_fires_once_and_makes_nothing_up() {
    let mut h = harness_at(EPOCH_MS);
    h.default.answer = Answer::Chunks(vec![]);
    h.deploy("app", &every_second("allow"));
    // The wall clock jumps an hour ahead: the due fire comes once, then one a second.
    h.now.wall += ms(3_600_000);
    h.advance_to(ms(2000));
    assert_eq!(invoke_times(&h), vec![1000, 2000]);
}

#[test]
fn a_kept_fire_is_dropped_when_the_app_stops() {
    let mut h = harness_at(EPOCH_MS);
    h.default = Behaviour {
        handshake: true,
        answer: Answer::Manual,
        obey: false,
    };
    h.deploy(
        "app",
        r#"{"type": "python", "args": "local:///srv/c", "engine": {"termination-timeout": 30},
            "tasks": {"tick": {"type": "cron", "schedule": "* * * * * *", "overlap": "buffer-one"}}}"#,
    );
    h.advance_to(ms(2000));
    h.input(Input::Remove {
        app: "app".into(),
        origin: AppOrigin::CommandLine,
    });
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[]);
    h.advance_to(ms(6000));
    assert_eq!(invoke_times(&h), vec![1000]);
    // Not even offered to the stopping engine.
    let refused: Vec<String> = logs(&h.all())
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("refused"))
        .collect();
    assert_eq!(refused, Vec::<String>::new());
}

#[test]
fn cron_tasks_are_no_longer_reported_as_not_run() {
    let mut h = harness_at(EPOCH_MS);
    h.deploy("app", &every_second("skip"));
    let not_run: Vec<String> = logs(&h.all())
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("not run by this node"))
        .collect();
    assert_eq!(not_run, Vec::<String>::new());
}
