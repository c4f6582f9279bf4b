//! filesystem-monitor through a hand-driven node: watches asked for and dropped, changes
//! batched for `debounce` after the first one, coalesced per path, one job per batch whose
//! body is a sorted JSON list, its reply published; failures retried; redeploys hand over.

use crate::harness;

use std::path::PathBuf;
use std::time::Duration;

use cocaine_core::ids::WatchId;
use cocaine_core::node::{AppOrigin, FsEvent, FsEventKind, Input, Output, WatchError};
use harness::*;
use serde_json::{json, Value};

const PUBSUB: &str = "tcp://127.0.0.1:9400";

fn app(task: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/fs",
            "pubsub": {{"endpoint": "{PUBSUB}", "interval": 600000}},
            "tasks": {{"inbox": {task}}}}}"#
    )
}

fn monitor(extra: &str) -> String {
    app(&format!(
        r#"{{"type": "filesystem-monitor", "path": "/data/in"{extra}}}"#
    ))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn watches(outputs: &[Output]) -> Vec<(WatchId, PathBuf, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::WatchPath {
                watch,
                path,
                recursive,
            } => Some((*watch, path.clone(), *recursive)),
            _ => None,
        })
        .collect()
}

fn unwatches(outputs: &[Output]) -> Vec<WatchId> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Unwatch { watch } => Some(*watch),
            _ => None,
        })
        .collect()
}

/// The one watch asked for so far.
fn the_watch(h: &Harness) -> WatchId {
    let all = watches(&h.all());
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].0
}

fn change(h: &mut Harness, watch: WatchId, events: &[(&str, FsEventKind)]) {
    let events = events
        .iter()
        .map(|(path, kind)| FsEvent {
            path: PathBuf::from(path),
            kind: *kind,
        })
        .collect();
    h.input(Input::FsEvents { watch, events });
}

/// Every job's request body, parsed, with when it reached a worker (ms since the start).
fn jobs(h: &Harness) -> Vec<(u64, Value)> {
    let mut all: Vec<(u64, Value)> = Vec::new();
    for w in h.workers.values() {
        let mut sids: Vec<(u64, u64)> = Vec::new();
        for (at, m) in &w.received {
            if let cocaine_core::codec::worker::WorkerMessage::Invoke { sid, .. } = m {
                sids.push((*sid, at.as_millis() as u64));
            }
        }
        for (sid, at) in sids {
            let mut body = Vec::new();
            for (_, m) in &w.received {
                if let cocaine_core::codec::worker::WorkerMessage::Chunk { sid: s, data } = m {
                    if *s == sid {
                        body.extend_from_slice(data);
                    }
                }
            }
            all.push((at, serde_json::from_slice(&body).expect("a body is JSON")));
        }
    }
    all.sort_by_key(|(at, _)| *at);
    all
}

use FsEventKind::{Created, Modified, Removed};

#[test]
fn the_watch_is_asked_for_at_start_with_the_tasks_path() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(r#", "recursive": true"#));
    let out = h.all();
    let w = watches(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].1, PathBuf::from("/data/in"));
    assert!(w[0].2, "recursive asked for");
    // It runs: no "not run by this node yet" warning.
    assert!(
        !logs(&out).iter().any(|(_, m)| m.contains("not run")),
        "{:?}",
        logs(&out)
    );
}

#[test]
fn changes_are_batched_for_debounce_after_the_first_one() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(r#", "debounce": 100"#));
    let watch = the_watch(&h);
    h.advance_to(ms(1000));
    change(&mut h, watch, &[("/data/in/a", Created)]);
    h.advance_to(ms(1050));
    change(&mut h, watch, &[("/data/in/b", Modified)]);
    h.advance_to(ms(1099));
    assert!(jobs(&h).is_empty(), "a job before the window closed");
    h.advance_to(ms(1100));
    assert_eq!(
        jobs(&h),
        vec![(
            1100,
            json!([{"path": "/data/in/a", "kind": "created"},
                   {"path": "/data/in/b", "kind": "modified"}])
        )]
    );
    // Later changes open a window of their own, from their first one; a change does not
    // extend the window it falls in.
    h.advance_to(ms(1500));
    change(&mut h, watch, &[("/data/in/c", Removed)]);
    h.advance_to(ms(1590));
    change(&mut h, watch, &[("/data/in/d", Created)]);
    h.advance_to(ms(1600));
    let all = jobs(&h);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[1],
        (
            1600,
            json!([{"path": "/data/in/c", "kind": "removed"},
                   {"path": "/data/in/d", "kind": "created"}])
        )
    );
    h.advance_to(ms(5000));
    assert_eq!(jobs(&h).len(), 2, "no job without changes");
}

#[test]
fn the_default_debounce_is_100_ms() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(""));
    let watch = the_watch(&h);
    change(&mut h, watch, &[("/data/in/a", Created)]);
    h.advance_to(ms(99));
    assert!(jobs(&h).is_empty());
    h.advance_to(ms(100));
    assert_eq!(jobs(&h).len(), 1);
}

#[test]
fn changes_to_one_path_are_coalesced_by_what_it_was_before_and_after() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(r#", "debounce": 200"#));
    let watch = the_watch(&h);
    change(
        &mut h,
        watch,
        &[
            ("/data/in/new", Created),
            ("/data/in/new", Modified),
            ("/data/in/tmp", Created),
            ("/data/in/old", Modified),
            ("/data/in/replaced", Removed),
            ("/data/in/new", Modified),
        ],
    );
    // Split across inputs as a runtime may.
    change(
        &mut h,
        watch,
        &[
            ("/data/in/tmp", Modified),
            ("/data/in/tmp", Removed),
            ("/data/in/old", Removed),
            ("/data/in/replaced", Created),
        ],
    );
    h.advance_to(ms(200));
    assert_eq!(
        jobs(&h),
        vec![(
            200,
            json!([{"path": "/data/in/new", "kind": "created"},
                   {"path": "/data/in/old", "kind": "removed"},
                   {"path": "/data/in/replaced", "kind": "modified"}])
        )]
    );
}

#[test]
fn a_batch_that_comes_to_nothing_makes_no_job() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(""));
    let watch = the_watch(&h);
    change(
        &mut h,
        watch,
        &[("/data/in/.swp", Created), ("/data/in/.swp", Removed)],
    );
    h.advance_to(ms(1000));
    assert!(jobs(&h).is_empty());
    assert!(h.spawned.is_empty(), "a worker started for nothing");
}

#[test]
fn the_reply_is_published_as_the_tasks_publication() {
    let mut h = Harness::new();
    // Echo workers: the reply is the body, a JSON list, published as `result`.
    h.deploy("fs", &monitor(""));
    let watch = the_watch(&h);
    change(&mut h, watch, &[("/data/in/x y", Created)]);
    h.advance_to(ms(100));
    assert_eq!(
        published(&h.all(), "fs:inbox"),
        vec![(
            topic("fs", "inbox", "result", 100),
            json!([{"path": "/data/in/x y", "kind": "created"}])
        )]
    );
    // The job's event is the task's name.
    let w = h.last_worker("fs");
    let events: Vec<String> = h
        .worker(w)
        .messages()
        .into_iter()
        .filter_map(|m| match m {
            cocaine_core::codec::worker::WorkerMessage::Invoke { event, .. } => Some(event),
            _ => None,
        })
        .collect();
    assert_eq!(events, vec!["inbox".to_owned()]);
}

#[test]
fn removing_the_app_drops_its_watch_and_later_events_do_nothing() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(""));
    let watch = the_watch(&h);
    change(&mut h, watch, &[("/data/in/a", Created)]);
    h.fresh();
    h.input(Input::Remove {
        app: "fs".to_owned(),
        origin: AppOrigin::CommandLine,
    });
    let out = h.fresh();
    assert_eq!(unwatches(&out), vec![watch]);
    change(&mut h, watch, &[("/data/in/b", Created)]);
    h.advance_to(ms(1000));
    assert!(jobs(&h).is_empty(), "{:?}", jobs(&h));
    assert_eq!(unwatches(&h.all()), vec![watch], "unwatched once");
    assert!(h.node.apps().next().is_none());
}

#[test]
fn shutdown_drops_every_watch() {
    let mut h = Harness::new();
    h.deploy(
        "fs",
        &app(r#"{"type": "filesystem-monitor", "path": "/data/in"}"#),
    );
    let watch = the_watch(&h);
    h.input(Input::Shutdown);
    assert_eq!(unwatches(&h.all()), vec![watch]);
    assert!(h.all().contains(&Output::Stopped));
}

#[test]
fn a_failed_watch_is_logged_and_asked_for_again_with_backoff() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(""));
    let watch = the_watch(&h);
    h.fresh();
    h.input(Input::WatchFailed {
        watch,
        error: WatchError::Other("no space left on device (inotify watches)".to_owned()),
    });
    let out = h.fresh();
    assert!(
        logs(&out).iter().any(|(_, m)| m
            .contains("fs/inbox: cannot watch /data/in: no space left")
            && m.contains("again in 1 s")),
        "{:?}",
        logs(&out)
    );
    h.advance_to(ms(999));
    assert!(watches(&h.fresh()).is_empty());
    h.advance_to(ms(1000));
    assert_eq!(
        watches(&h.fresh()),
        vec![(watch, PathBuf::from("/data/in"), false)]
    );
    // Failing again doubles the wait.
    h.input(Input::WatchFailed {
        watch,
        error: WatchError::Other("still".to_owned()),
    });
    h.advance_to(ms(2999));
    assert!(watches(&h.fresh()).is_empty());
    h.advance_to(ms(3000));
    assert_eq!(watches(&h.fresh()).len(), 1);
    // The app kept serving meanwhile: events through the new watch make jobs.
    change(&mut h, watch, &[("/data/in/a", Created)]);
    h.advance_to(ms(3100));
    assert_eq!(jobs(&h).len(), 1);
    // A failure reported for a watch already failed (a late duplicate) changes nothing.
    h.input(Input::WatchFailed {
        watch,
        error: WatchError::Other("x".to_owned()),
    });
    h.input(Input::WatchFailed {
        watch,
        error: WatchError::Other("x".to_owned()),
    });
    h.fresh();
    h.advance_to(ms(3100 + 1000));
    assert_eq!(
        watches(&h.fresh()).len(),
        1,
        "one retry, after the reset backoff"
    );
}

#[test]
fn a_redeploy_watches_anew_and_hands_over_the_open_batch() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(r#", "debounce": 500"#));
    let old = the_watch(&h);
    change(&mut h, old, &[("/data/in/a", Created)]);
    h.fresh();
    h.advance_to(ms(100));
    h.deploy(
        "fs",
        &app(r#"{"type": "filesystem-monitor", "path": "/data/in", "debounce": 500}"#),
    );
    let out = h.fresh();
    let new = watches(&out);
    assert_eq!(new.len(), 1, "{out:?}");
    let new = new[0].0;
    assert_ne!(new, old);
    // The new watch is asked for before the old one is dropped: no change falls between.
    let at = |pred: &dyn Fn(&Output) -> bool| out.iter().position(pred).unwrap();
    assert!(
        at(&|o| matches!(o, Output::WatchPath { .. }))
            < at(&|o| matches!(o, Output::Unwatch { watch } if *watch == old))
    );
    // A change the old watch still reports, and one the new watch reports, join the batch
    // handed over: one job, the shared change not doubled.
    change(&mut h, old, &[("/data/in/b", Created)]);
    change(
        &mut h,
        new,
        &[("/data/in/b", Created), ("/data/in/c", Created)],
    );
    h.advance_to(ms(1000));
    assert_eq!(
        jobs(&h),
        vec![(
            600,
            json!([{"path": "/data/in/a", "kind": "created"},
                   {"path": "/data/in/b", "kind": "created"},
                   {"path": "/data/in/c", "kind": "created"}])
        )]
    );
    h.input(Input::Remove {
        app: "fs".to_owned(),
        origin: AppOrigin::CommandLine,
    });
    assert_eq!(unwatches(&h.all()), vec![old, new]);
}

#[test]
fn a_flood_is_cut_into_bounded_batches() {
    let mut h = Harness::new();
    h.deploy("fs", &monitor(r#", "debounce": 1000"#));
    let watch = the_watch(&h);
    let paths: Vec<String> = (0..10_001).map(|i| format!("/data/in/{i:05}")).collect();
    let events: Vec<(&str, FsEventKind)> = paths.iter().map(|p| (p.as_str(), Created)).collect();
    change(&mut h, watch, &events);
    // The first 10 000 paths went at once; the last one waits for its window.
    let now = jobs(&h);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].1.as_array().unwrap().len(), 10_000);
    h.advance_to(ms(1000));
    let all = jobs(&h);
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[1].1,
        json!([{"path": "/data/in/10000", "kind": "created"}])
    );
}
