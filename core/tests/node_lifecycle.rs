//! Apps coming and going, workers dying, crash loops, shutdown and determinism, through a
//! hand-driven node.

use crate::harness;

use std::time::{Duration, Instant};

use cocaine_core::codec::native::NativeMessage;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::node::{AppOrigin, BindError, Input, NodeConfig, Output, SocketKind, SpawnError};
use cocaine_core::process::{ExitStatus, Signal};
use harness::*;
use serde_json::json;

fn server_app(endpoint: &str, extra: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/app"{extra},
            "tasks": {{"serve": {{"type": "native-server", "endpoint": "{endpoint}"}}}}}}"#
    )
}

fn one_shot(sid: u64, data: &[u8]) -> Vec<bytes::Bytes> {
    vec![b(b"client"), open(sid, ""), chunk(sid, data), choke(sid)]
}

fn echoed(sid: u64, data: &[u8]) -> Vec<NativeMessage> {
    vec![
        NativeMessage::Chunk { sid, data: b(data) },
        NativeMessage::Choke { sid },
    ]
}

fn error_of(message: &NativeMessage) -> (u64, u32, String) {
    match message {
        NativeMessage::Error { sid, code, message } => (*sid, *code, message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

const EP_A: &str = "tcp://127.0.0.1:9301";
const EP_B: &str = "tcp://127.0.0.1:9302";
const PUBSUB: &str = "tcp://127.0.0.1:9303";

#[test]
fn a_bind_failure_fails_the_deploy_and_leaves_other_apps_alone() {
    let mut h = Harness::new();
    h.deploy("good", &server_app(EP_A, ""));
    let good = h.endpoint(EP_A);
    h.auto_bind = false;
    let pubsub = format!(r#", "pubsub": {{"endpoint": "{PUBSUB}"}}"#);
    h.deploy("bad", &server_app(EP_B, &pubsub));
    let bad = h.endpoint(EP_B);
    let bad_pubsub = h.endpoint(PUBSUB);
    assert!(h
        .binds
        .contains(&(bad_pubsub, SocketKind::Pub, PUBSUB.into())));
    h.fresh();
    h.input(Input::Bound {
        endpoint: bad_pubsub,
        result: Ok(()),
    });
    h.input(Input::Bound {
        endpoint: bad,
        result: Err(BindError::AddressInUse("Address already in use".into())),
    });
    let out = h.fresh();
    let failed: Vec<(String, String)> = out
        .iter()
        .filter_map(|o| match o {
            Output::DeployFailed { app, reason } => Some((app.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{out:?}");
    assert_eq!(failed[0].0, "bad");
    assert!(failed[0].1.contains(EP_B), "{}", failed[0].1);
    assert!(failed[0].1.contains("Address already in use"));
    assert!(!out.iter().any(|o| matches!(o, Output::AppStarted { .. })));
    assert!(!out.iter().any(|o| matches!(o, Output::AppStopped { .. })));
    assert!(out.contains(&Output::Unbind {
        endpoint: bad_pubsub
    }));
    assert_eq!(h.node.apps().collect::<Vec<_>>(), vec!["good"]);
    // The failed app serves nothing.
    h.receive(bad, one_shot(1, b"x"));
    let out = h.fresh();
    assert!(sends(&out, bad).is_empty());
    assert!(h.spawned.is_empty());
    // The other app works.
    h.receive(good, one_shot(1, b"still here"));
    assert_eq!(
        native_replies(&h.fresh(), good, b"client"),
        echoed(1, b"still here")
    );
}

#[test]
fn an_app_from_another_origin_or_on_a_taken_endpoint_is_refused() {
    let mut h = Harness::new();
    h.deploy("a", &server_app(EP_A, ""));
    let ep = h.endpoint(EP_A);
    h.fresh();
    // The same name from the watched folder cannot replace an app of the command line.
    h.input(Input::Deploy {
        manifest: Box::new(manifest("a", &server_app(EP_B, ""))),
        origin: AppOrigin::Watched,
    });
    h.deploy("b", &server_app(EP_A, ""));
    let out = h.fresh();
    let failed: Vec<(String, String)> = out
        .iter()
        .filter_map(|o| match o {
            Output::DeployFailed { app, reason } => Some((app.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{out:?}");
    assert_eq!(failed[0].0, "a");
    assert!(
        failed[0]
            .1
            .contains("runs already, given on the command line"),
        "{}",
        failed[0].1
    );
    assert_eq!(failed[1].0, "b");
    assert!(failed[1].1.contains(EP_A), "{}", failed[1].1);
    // Nothing was bound for either.
    assert!(!out.iter().any(|o| matches!(o, Output::Bind { .. })));
    assert_eq!(h.node.apps().collect::<Vec<_>>(), vec!["a"]);
    h.receive(ep, one_shot(1, b"ok"));
    assert_eq!(native_replies(&h.fresh(), ep, b"client"), echoed(1, b"ok"));
}

#[test]
fn a_worker_dying_mid_job_fails_it_with_500_and_a_new_worker_serves_the_next() {
    let mut h = Harness::new();
    h.default.answer = Answer::Manual;
    h.deploy("app", &server_app(EP_A, ""));
    let ep = h.endpoint(EP_A);
    h.receive(ep, one_shot(1, b"doomed"));
    let first = h.last_worker("app");
    assert_eq!(h.worker(first).invoked.len(), 1);
    h.fresh();
    h.exit(first, ExitStatus::Signal(9));
    let out = h.fresh();
    let replies = native_replies(&out, ep, b"client");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let (sid, code, message) = error_of(&replies[0]);
    assert_eq!((sid, code), (1, 500));
    assert!(message.contains("signal 9"), "{message}");
    assert!(out.contains(&Output::CloseWorker { worker: first }));
    h.default.answer = Answer::Echo;
    h.receive(ep, one_shot(2, b"fine"));
    let second = h.last_worker("app");
    assert_ne!(first, second, "no new worker was spawned");
    assert_eq!(
        native_replies(&h.fresh(), ep, b"client"),
        echoed(2, b"fine")
    );
}

#[test]
fn a_crash_loop_breaks_the_app_with_its_traceback_and_spares_the_other_app() {
    let mut h = Harness::new();
    h.behaviours.insert(
        "crashy".into(),
        Behaviour {
            handshake: false,
            answer: Answer::Manual,
            obey: true,
        },
    );
    // expose-errors: callers get the whole report; by default one short line
    // (engine_failing.rs).
    let extra = format!(
        r#", "engine": {{"restart-intensity": 2, "restart-period": 10, "pool-limit": 1,
                         "expose-errors": true}},
            "pubsub": {{"endpoint": "{PUBSUB}", "interval": 600000}}"#
    );
    h.deploy("crashy", &server_app(EP_A, &extra));
    h.deploy("steady", &server_app(EP_B, ""));
    let crashy = h.endpoint(EP_A);
    let steady = h.endpoint(EP_B);
    h.receive(crashy, one_shot(1, b"a"));
    h.receive(crashy, one_shot(2, b"b"));
    let mut died = Vec::new();
    for round in 0..3 {
        let w = h.last_worker("crashy");
        assert!(!died.contains(&w), "round {round}: no new worker");
        h.stderr(w, "Traceback (most recent call last):");
        h.stderr(w, "NameError: name 'foo' is not defined");
        h.exit(w, ExitStatus::Code(1));
        died.push(w);
        h.advance(Duration::from_millis(100));
    }
    let out = h.all();
    let replies = native_replies(&out, crashy, b"client");
    assert_eq!(replies.len(), 2, "{replies:?}");
    for (i, reply) in replies.iter().enumerate() {
        let (sid, code, message) = error_of(reply);
        assert_eq!((sid, code), (i as u64 + 1, 500));
        assert!(
            message.contains("NameError: name 'foo' is not defined"),
            "{message}"
        );
    }
    assert_eq!(
        h.node.engine("crashy").map(|e| e.state().name()),
        Some("broken")
    );
    // No worker is spawned while broken.
    assert_eq!(h.workers_of("crashy"), died);
    let states = published(&out, "crashy:engine state");
    let broken: Vec<_> = states
        .iter()
        .filter(|(_, v)| v["state"] == json!("broken"))
        .collect();
    assert_eq!(broken.len(), 1, "{states:?}");
    let reason = broken[0].1["reason"].as_str().expect("no reason");
    assert!(reason.contains("NameError"), "{reason}");
    // New requests are refused at once.
    h.fresh();
    h.receive(crashy, one_shot(3, b"c"));
    let replies = native_replies(&h.fresh(), crashy, b"client");
    assert_eq!(replies.len(), 1);
    let (sid, code, message) = error_of(&replies[0]);
    assert_eq!((sid, code), (3, 503));
    assert!(message.contains("broken"), "{message}");
    // The other app serves.
    h.receive(steady, one_shot(1, b"fine"));
    assert_eq!(
        native_replies(&h.fresh(), steady, b"client"),
        echoed(1, b"fine")
    );
}

#[test]
fn shutdown_lets_a_running_job_finish_then_stops() {
    let mut h = Harness::new();
    h.default.answer = Answer::Manual;
    h.deploy("app", &server_app(EP_A, ""));
    let ep = h.endpoint(EP_A);
    h.receive(ep, one_shot(1, b"work"));
    let (w, sid) = h.invokes[0];
    h.fresh();
    h.input(Input::Shutdown);
    let out = h.fresh();
    assert!(h.worker(w).terminating, "the worker got no terminate");
    assert!(h.worker(w).messages().contains(&WorkerMessage::Terminate {
        reason: "app is stopping".into()
    }));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::AppStopped { .. } | Output::Stopped)));
    assert!(kills(&out).is_empty());
    // New requests are refused while stopping.
    h.receive(ep, one_shot(2, b"late"));
    let replies = native_replies(&h.fresh(), ep, b"client");
    assert_eq!(
        replies.iter().map(error_of).collect::<Vec<_>>(),
        vec![(2, 503, "app is stopping".to_owned())]
    );
    h.advance(Duration::from_millis(1000));
    h.worker_replies(w, sid, &[b"done"]);
    let out = h.fresh();
    let tail: Vec<&Output> = out
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Send { .. } | Output::AppStopped { .. } | Output::Stopped
            )
        })
        .collect();
    assert_eq!(
        tail,
        vec![
            // The chunk and the end travel in one ZeroMQ message, in order.
            &Output::Send {
                endpoint: ep,
                frames: vec![b(b"client"), chunk(1, b"done"), choke(1)]
            },
            &Output::AppStopped { app: "app".into() },
            &Output::Stopped,
        ]
    );
    assert!(h.worker(w).exited);
    assert!(kills(&out).is_empty(), "an obedient worker was signalled");
    assert_eq!(h.node.apps().count(), 0);
    assert_eq!(h.node.poll_timeout(), None);
}

#[test]
fn a_worker_ignoring_terminate_gets_term_then_kill() {
    let mut h = Harness::new();
    h.default = Behaviour {
        handshake: true,
        answer: Answer::Echo,
        obey: false,
    };
    h.deploy(
        "app",
        &server_app(EP_A, r#", "engine": {"termination-timeout": 2}"#),
    );
    let ep = h.endpoint(EP_A);
    h.receive(ep, one_shot(1, b"x"));
    let w = h.last_worker("app");
    h.advance(Duration::from_millis(500));
    let start = h.elapsed();
    h.input(Input::Shutdown);
    assert!(h.worker(w).terminating);
    h.advance(Duration::from_millis(1999));
    assert!(kills(&h.all()).is_empty());
    h.advance(Duration::from_millis(1));
    h.advance(Duration::from_millis(2000));
    let signals: Vec<(Duration, Signal)> = h
        .outputs
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Kill { worker, signal } if *worker == w => Some((*t - start, *signal)),
            _ => None,
        })
        .collect();
    assert_eq!(
        signals,
        vec![
            (Duration::from_millis(2000), Signal::Term),
            (Duration::from_millis(4000), Signal::Kill)
        ]
    );
    assert!(!h.all().iter().any(|o| matches!(o, Output::Stopped)));
    h.fresh();
    h.exit(w, ExitStatus::Signal(9));
    let out = h.fresh();
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::AppStopped { .. } | Output::Stopped))
            .collect::<Vec<_>>(),
        vec![&Output::AppStopped { app: "app".into() }, &Output::Stopped]
    );
}

/// A run mixing most of what a node does, as its outputs' `Debug` text.
fn scenario(start: Instant) -> Vec<String> {
    let mut h = Harness::at(
        start,
        NodeConfig {
            hostname: HOST.to_owned(),
            ..NodeConfig::default()
        },
    );
    h.default.answer = Answer::Echo;
    h.behaviours.insert(
        "slow".into(),
        Behaviour {
            handshake: true,
            answer: Answer::Manual,
            obey: false,
        },
    );
    let pubsub = format!(r#", "pubsub": {{"endpoint": "{PUBSUB}", "interval": 700}}"#);
    h.deploy(
        "fast",
        &format!(
            r#"{{"type": "python", "args": "local:///srv/f"{pubsub},
                "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP_A}"}},
                           "tick": {{"type": "recurring-timer", "interval": 300}},
                           "z": {{"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:9309"}}}}}}"#
        ),
    );
    h.deploy(
        "slow",
        &server_app(EP_B, r#", "engine": {"termination-timeout": 1}"#),
    );
    let fast = h.endpoint(EP_A);
    let z = h.endpoint("tcp://127.0.0.1:9309");
    let slow = h.endpoint(EP_B);
    for i in 1..=5u64 {
        h.receive(fast, one_shot(i, format!("req{i}").as_bytes()));
        h.receive(slow, one_shot(i, b"slow"));
        h.receive(z, vec![b(b"zid"), bytes::Bytes::new(), b(b"zbody")]);
        h.advance(Duration::from_millis(130 * i));
    }
    h.receive(slow, vec![b(b"client"), cancel(2)]);
    h.receive(fast, vec![b(b"client"), b(b"\x00junk")]);
    let w = h.last_worker("slow");
    h.exit(w, ExitStatus::Signal(9));
    h.advance(Duration::from_millis(2500));
    h.input(Input::Shutdown);
    h.advance(Duration::from_secs(10));
    // The disobedient workers die of their SIGKILL.
    let stubborn: Vec<_> = h
        .workers
        .iter()
        .filter(|(_, w)| !w.exited)
        .map(|(id, _)| *id)
        .collect();
    for w in stubborn {
        assert!(h.worker(w).signals.contains(&Signal::Kill));
        h.exit(w, ExitStatus::Signal(9));
    }
    h.all().iter().map(|o| format!("{o:?}")).collect()
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let start = Instant::now();
    let first = scenario(start);
    let second = scenario(start);
    assert!(
        first.len() > 100,
        "the scenario did too little: {}",
        first.len()
    );
    assert_eq!(first, second);
    // Nor does the origin of the monotonic clock matter.
    let third = scenario(start + Duration::from_secs(1234));
    assert_eq!(first, third);
    assert!(first.iter().any(|o| o.starts_with("Stopped")));
}

#[test]
fn a_failed_spawn_is_replaced_and_the_queued_request_still_runs() {
    let mut h = Harness::new();
    h.default.handshake = false;
    h.deploy("app", &server_app(EP_A, ""));
    let ep = h.endpoint(EP_A);
    h.receive(ep, one_shot(1, b"patient"));
    let first = h.last_worker("app");
    h.input(Input::SpawnFailed {
        worker: first,
        error: SpawnError::NotFound("python3: not found".into()),
    });
    let second = h.last_worker("app");
    assert_ne!(first, second, "the failed spawn was not replaced");
    assert_eq!(
        h.node.engine("app").map(|e| e.info().workers.starting),
        Some(1)
    );
    h.handshake(second);
    assert_eq!(
        native_replies(&h.fresh(), ep, b"client"),
        echoed(1, b"patient")
    );
}

#[test]
fn a_ready_worker_reported_as_a_failed_spawn_takes_no_more_jobs() {
    let mut h = Harness::new();
    h.deploy("app", &server_app(EP_A, ""));
    let ep = h.endpoint(EP_A);
    h.receive(ep, one_shot(1, b"one"));
    let first = h.last_worker("app");
    h.fresh();
    h.input(Input::SpawnFailed {
        worker: first,
        error: SpawnError::Other("lost".into()),
    });
    h.receive(ep, one_shot(2, b"two"));
    let second = h.last_worker("app");
    assert_ne!(first, second, "a job was given to a worker that is gone");
    assert_eq!(native_replies(&h.fresh(), ep, b"client"), echoed(2, b"two"));
    assert_eq!(
        h.node.engine("app").map(|e| e.info().workers.ready),
        Some(1)
    );
}
