//! A node with many apps: every timer fires at its own time however many apps there are (and
//! after others are stopped or redeployed), and an input for one app visits that app alone.

use crate::harness;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::{AppOrigin, Input, Output};
use harness::*;

const APPS: usize = 200;
const END_MS: u64 = 5000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn name(i: usize) -> String {
    format!("a{i:03}")
}

/// An app with one timer task and a worker from the start; `extra` adds top-level keys.
fn timer_app(version: u64, kind: &str, interval: u64, extra: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/t", "version": {version},
            "engine": {{"pool-min": 1}}{extra},
            "tasks": {{"tick": {{"type": "{kind}", "interval": {interval}}}}}}}"#
    )
}

/// When the workers of `app` (all its versions) got an invoke, in ms since the start.
fn invoke_times(h: &Harness, app: &str) -> Vec<u64> {
    let mut times: Vec<u64> = h
        .workers_of(app)
        .iter()
        .flat_map(|w| h.worker(*w).received.iter())
        .filter(|(_, m)| matches!(m, WorkerMessage::Invoke { .. }))
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    times.sort_unstable();
    times
}

/// `from + k * every` for k = 1, 2, … up to `until`.
fn grid(from: u64, every: u64, until: u64) -> Vec<u64> {
    (1..)
        .map(|k| from + k * every)
        .take_while(|t| *t <= until)
        .collect()
}

/// When `app`'s stats were published, in ms since the start.
fn stats_times(h: &Harness, app: &str) -> Vec<u64> {
    let prefix = format!("{app}:engine stats ");
    h.outputs
        .iter()
        .filter(|(_, o)| {
            matches!(o, Output::Publish { topic, .. } if topic.starts_with(prefix.as_bytes()))
        })
        .map(|(t, _)| t.as_millis() as u64)
        .collect()
}

/// Recurring and drifting timers (a drifting one re-arms when its job's reply is carried
/// out) and stats publications, all at different times.
#[test]
fn every_timer_of_two_hundred_apps_fires_at_its_own_time_and_none_early() {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![]);
    let interval = |i: usize| 150 + 11 * i as u64;
    let stats = |i: usize| 300 + 17 * i as u64;
    for i in 0..APPS {
        let kind = if i % 2 == 0 {
            "recurring-timer"
        } else {
            "drifting-timer"
        };
        let pubsub = if i % 10 == 0 {
            format!(
                r#", "pubsub": {{"endpoint": "tcp://127.0.0.1:{}", "interval": {}}}"#,
                9000 + i,
                stats(i)
            )
        } else {
            String::new()
        };
        h.deploy(&name(i), &timer_app(1, kind, interval(i), &pubsub));
    }
    // Every worker answers at once, so a drifting timer's run ends where it starts: both
    // kinds keep to the same grid here.
    for t in [100, 999, 2500, END_MS] {
        h.advance_to(ms(t));
        for i in 0..APPS {
            assert_eq!(
                invoke_times(&h, &name(i)),
                grid(0, interval(i), t),
                "{} by {t} ms",
                name(i)
            );
        }
    }
    for i in (0..APPS).step_by(10) {
        assert_eq!(stats_times(&h, &name(i)), grid(0, stats(i), END_MS));
    }
}

#[test]
fn timers_among_many_apps_stay_exact_when_some_stop_and_some_are_redeployed() {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![]);
    let interval = |i: usize| 100 + 7 * i as u64;
    for i in 0..APPS {
        h.deploy(&name(i), &timer_app(1, "recurring-timer", interval(i), ""));
    }
    const CHANGE_MS: u64 = 1000;
    h.advance_to(ms(CHANGE_MS));
    for i in 0..APPS {
        match i % 3 {
            0 => h.input(Input::Remove {
                app: name(i),
                origin: AppOrigin::CommandLine,
            }),
            1 => {
                let manifest = timer_app(2, "recurring-timer", 2 * interval(i), "");
                h.deploy(&name(i), &manifest);
            }
            _ => {}
        }
    }
    h.advance_to(ms(4000));
    for i in 0..APPS {
        let before = grid(0, interval(i), CHANGE_MS);
        let expected = match i % 3 {
            0 => before,
            // The new version starts at once (its worker is up at once) on its own grid.
            1 => [before, grid(CHANGE_MS, 2 * interval(i), 4000)].concat(),
            _ => grid(0, interval(i), 4000),
        };
        assert_eq!(invoke_times(&h, &name(i)), expected, "{}", name(i));
    }
    let running = h.node.apps().count();
    assert_eq!(running, APPS - APPS.div_ceil(3));
}

/// Visits of the node's per-input work for three inputs: a worker's reply to a job of app
/// `busy`, a tick with nothing due, and the tick at which `busy`'s timer is due. `idle` other
/// apps have timers too, due much later.
fn visits_with(idle: usize) -> [usize; 3] {
    let mut h = Harness::new();
    h.default.answer = Answer::Chunks(vec![]);
    let manual = Behaviour {
        answer: Answer::Manual,
        ..Behaviour::default()
    };
    h.behaviours.insert("busy".into(), manual);
    for i in 0..idle {
        h.deploy(&name(i), &timer_app(1, "recurring-timer", 3_600_000, ""));
    }
    let pubsub = r#", "pubsub": {"endpoint": "tcp://127.0.0.1:9999", "interval": 60000}"#;
    h.deploy("busy", &timer_app(1, "recurring-timer", 1000, pubsub));
    h.advance_to(ms(1000));
    let &(worker, sid) = h.invokes.last().expect("busy's timer ran a job");
    // The input is handed in by hand to read the counter before the harness's own inputs.
    let reply = [
        WorkerMessage::Chunk {
            sid,
            data: Bytes::from_static(b"done"),
        },
        WorkerMessage::Choke { sid },
    ];
    h.node.handle_input(
        h.now,
        Input::WorkerData {
            worker,
            bytes: cocaine_core::sim::encode(&reply),
        },
    );
    let reply_visits = h.node.apps_visited_last_step();
    h.workers
        .get_mut(&worker)
        .expect("busy's worker")
        .said(&reply[1]);
    h.pump();
    assert_eq!(
        published(&h.all(), "busy:tick").len(),
        1,
        "the reply went out"
    );
    let tick_at = |h: &mut Harness, t: u64| {
        let at = h.start + ms(t);
        assert!(
            h.node.poll_timeout().is_some_and(|due| due >= at),
            "something is due before {t} ms"
        );
        h.now = h.now + (at - h.now.mono);
        h.node.handle_input(h.now, Input::Tick);
        let visits = h.node.apps_visited_last_step();
        h.pump();
        visits
    };
    let idle_tick = tick_at(&mut h, 1500);
    let due_tick = tick_at(&mut h, 2000);
    assert_eq!(invoke_times(&h, "busy"), vec![1000, 2000]);
    [reply_visits, idle_tick, due_tick]
}

#[test]
fn an_input_for_one_app_visits_it_alone_however_many_apps_there_are() {
    let alone = visits_with(0);
    let among_many = visits_with(APPS);
    assert_eq!(alone, among_many, "visits with 0 vs {APPS} idle apps");
    let [reply, idle_tick, due_tick] = among_many;
    assert_eq!(idle_tick, 0, "a tick with nothing due looks at no app");
    // The reply: busy is drained and its deadline read again, once each.
    assert!(reply <= 2, "{reply} visits for one reply");
    assert!(due_tick <= 4, "{due_tick} visits for one due timer");
}
