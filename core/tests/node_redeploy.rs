//! Redeploying a running app: new workers take new jobs and the queue, old workers finish
//! what they run, shared endpoints keep their sockets, and nothing accepted is lost.

use crate::harness;

use cocaine_core::codec::native::NativeMessage;
use cocaine_core::node::{BindError, Input, Output};
use cocaine_core::WorkerId;
use harness::*;

const EP_A: &str = "tcp://127.0.0.1:9401";
const EP_B: &str = "tcp://127.0.0.1:9402";
const PUBSUB: &str = "tcp://127.0.0.1:9403";

fn app(version: u64, extra: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/app", "version": {version},
            "engine": {{"pool-limit": 1, "concurrency": 1, "queue-limit": 100}}{extra},
            "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP_A}"}}}}}}"#
    )
}

fn manual() -> Behaviour {
    Behaviour {
        answer: Answer::Manual,
        ..Behaviour::default()
    }
}

/// How many jobs a worker was asked to run.
fn invoked_on(h: &Harness, worker: WorkerId) -> usize {
    h.invokes.iter().filter(|(w, _)| *w == worker).count()
}

/// The client's terminal replies so far, by the sid the client chose.
fn answered(h: &Harness, ep: cocaine_core::EndpointId) -> Vec<(u64, bool)> {
    native_replies(&h.all(), ep, b"client")
        .into_iter()
        .filter_map(|m| match m {
            NativeMessage::Choke { sid } => Some((sid, true)),
            NativeMessage::Error { sid, .. } => Some((sid, false)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_redeploy_moves_the_queue_and_lets_running_jobs_finish() {
    let mut h = Harness::new();
    h.behaviours.insert("a".into(), manual());
    h.deploy("a", &app(1, ""));
    let ep = h.endpoint(EP_A);
    // One job runs on the only worker, three wait, one is still streaming its request in.
    for sid in 1..=4 {
        h.receive(
            ep,
            vec![b(b"client"), open(sid, ""), chunk(sid, b"x"), choke(sid)],
        );
    }
    h.receive(ep, vec![b(b"client"), open(5, ""), chunk(5, b"first")]);
    let old = h.last_worker("a");
    assert_eq!(invoked_on(&h, old), 1);
    h.fresh();

    h.deploy("a", &app(2, ""));
    let out = h.fresh();
    assert!(
        !out.iter().any(|o| matches!(o, Output::Bind { .. })),
        "the shared endpoint was bound again: {out:?}"
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Unbind { .. })));
    let new = h.last_worker("a");
    assert_ne!(new.app(), old.app(), "the new version has its own engine");
    // The old worker is asked to leave once done, and is not signalled while it works.
    assert!(h.worker(old).terminating);
    assert!(h.worker(old).signals.is_empty());
    // The queue moved in order; the new worker (concurrency 1) runs the first of it.
    assert_eq!(invoked_on(&h, new), 1);

    // The streaming request goes on, to the version that now holds it.
    h.receive(ep, vec![b(b"client"), chunk(5, b"second"), choke(5)]);

    // The old job finishes on the old worker, which then leaves; its endpoint stays.
    let old_sid = *h.worker(old).jobs.keys().next().unwrap();
    h.worker_replies(old, old_sid, &[b"v1"]);
    let out = h.fresh();
    assert!(h.worker(old).exited, "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::Unbind { .. })));
    assert!(!out.iter().any(|o| matches!(o, Output::AppStopped { .. })));
    for n in 1..=4 {
        assert_eq!(invoked_on(&h, new), n);
        let (_, job) = h
            .workers
            .get(&new)
            .and_then(|w| w.jobs.iter().next())
            .map(|(s, j)| (*s, j.clone()))
            .expect("a job on the new worker");
        if n == 4 {
            assert_eq!(job.chunks, vec![b(b"first"), b(b"second")]);
            assert!(job.ended);
        }
        let worker_sid = *h.worker(new).jobs.keys().next().unwrap();
        h.worker_replies(new, worker_sid, &[b"v2"]);
    }
    let replies = answered(&h, ep);
    assert_eq!(
        replies,
        vec![(1, true), (2, true), (3, true), (4, true), (5, true)],
        "every request answered once, none failed"
    );
    // New calls go to the new version; the app is still one app.
    h.receive(
        ep,
        vec![b(b"client"), open(6, ""), chunk(6, b"x"), choke(6)],
    );
    assert_eq!(invoked_on(&h, new), 5);
    assert_eq!(h.node.apps().collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(h.node.engine("a").map(|e| e.app_id()), Some(new.app()));
}

#[test]
fn a_redeploy_that_cannot_bind_leaves_the_running_version_serving() {
    let mut h = Harness::new();
    h.deploy("a", &app(1, ""));
    let ep = h.endpoint(EP_A);
    h.receive(
        ep,
        vec![b(b"client"), open(1, ""), chunk(1, b"hi"), choke(1)],
    );
    let old = h.last_worker("a");
    h.auto_bind = false;
    let pubsub = format!(r#", "pubsub": {{"endpoint": "{PUBSUB}"}}"#);
    h.deploy("a", &app(2, &pubsub));
    let pubsub_ep = h.endpoint(PUBSUB);
    h.fresh();
    h.input(Input::Bound {
        endpoint: pubsub_ep,
        result: Err(BindError::AddressInUse("Address already in use".into())),
    });
    let out = h.fresh();
    let failed = out.iter().find_map(|o| match o {
        Output::DeployFailed { app, reason } => Some((app.clone(), reason.clone())),
        _ => None,
    });
    let (name, reason) = failed.expect("the redeploy fails");
    assert_eq!(name, "a");
    assert!(reason.contains(PUBSUB), "{reason}");
    // Only the new version's own endpoint is closed.
    let unbound: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Unbind { endpoint } => Some(*endpoint),
            _ => None,
        })
        .collect();
    assert!(!unbound.contains(&ep));
    // The old version still serves, on its old worker.
    h.receive(
        ep,
        vec![b(b"client"), open(2, ""), chunk(2, b"hi"), choke(2)],
    );
    assert_eq!(invoked_on(&h, old), 2);
    assert_eq!(answered(&h, ep), vec![(1, true), (2, true)]);
    assert!(!h.worker(old).terminating);
}

#[test]
fn a_redeploy_binds_only_new_endpoints_and_closes_dropped_ones() {
    let mut h = Harness::new();
    let with_server = format!(
        r#"{{"type": "python", "args": "local:///srv/app",
            "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP_A}"}},
                       "req": {{"type": "zeromq-server", "endpoint": "{EP_B}"}}}}}}"#
    );
    h.deploy("a", &with_server);
    let a = h.endpoint(EP_A);
    let dropped = h.endpoint(EP_B);
    h.fresh();
    let with_pubsub = format!(
        r#"{{"type": "python", "args": "local:///srv/app", "pubsub": {{"endpoint": "{PUBSUB}"}},
            "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP_A}"}}}}}}"#
    );
    h.deploy("a", &with_pubsub);
    let out = h.fresh();
    let bound: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::Bind { address, .. } => Some(address.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bound, vec![PUBSUB.to_owned()]);
    let unbound: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Unbind { endpoint } => Some(*endpoint),
            _ => None,
        })
        .collect();
    assert_eq!(
        unbound,
        vec![dropped],
        "the old version left: only its own endpoint closes"
    );
    // The kept endpoint now serves the new version.
    h.receive(
        a,
        vec![b(b"client"), open(1, ""), chunk(1, b"hi"), choke(1)],
    );
    assert_eq!(
        native_replies(&h.fresh(), a, b"client"),
        vec![
            NativeMessage::Chunk {
                sid: 1,
                data: b(b"hi")
            },
            NativeMessage::Choke { sid: 1 }
        ]
    );
}

#[test]
fn removing_an_app_during_its_redeploy_stops_both_versions() {
    let mut h = Harness::new();
    h.deploy("a", &app(1, ""));
    h.auto_bind = false;
    let pubsub = format!(r#", "pubsub": {{"endpoint": "{PUBSUB}"}}"#);
    h.deploy("a", &app(2, &pubsub));
    h.input(Input::Remove {
        app: "a".into(),
        origin: cocaine_core::node::AppOrigin::CommandLine,
    });
    h.input(Input::Shutdown);
    let out = h.all();
    assert!(out.iter().any(|o| matches!(o, Output::Stopped)), "{out:?}");
    assert!(h.node.apps().next().is_none());
}

#[test]
fn a_new_version_whose_workers_cannot_start_never_takes_over() {
    let mut h = Harness::new();
    h.deploy("a", &app(1, ""));
    let ep = h.endpoint(EP_A);
    h.receive(
        ep,
        vec![b(b"client"), open(1, ""), chunk(1, b"hi"), choke(1)],
    );
    let old = h.last_worker("a");
    // Version 2's workers never complete their handshake.
    h.behaviours.insert(
        "a".into(),
        Behaviour {
            handshake: false,
            ..Behaviour::default()
        },
    );
    let v2 = format!(
        r#"{{"type": "python", "args": "local:///srv/app", "version": 2,
            "engine": {{"startup-timeout": 1, "restart-intensity": 0, "pool-limit": 1}},
            "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP_A}"}}}}}}"#
    );
    h.deploy("a", &v2);
    let new = h.last_worker("a");
    assert_ne!(
        new.app(),
        old.app(),
        "the new version starts a worker to prove itself"
    );
    // Meanwhile the old version still serves.
    h.receive(
        ep,
        vec![b(b"client"), open(2, ""), chunk(2, b"hi"), choke(2)],
    );
    assert_eq!(invoked_on(&h, old), 2);
    h.fresh();
    h.advance(std::time::Duration::from_millis(1100));
    let out = h.fresh();
    let failed = out.iter().find_map(|o| match o {
        Output::DeployFailed { app, reason } => Some((app.clone(), reason.clone())),
        _ => None,
    });
    let (name, reason) = failed.unwrap_or_else(|| panic!("the new version is abandoned: {out:#?}"));
    assert_eq!(name, "a");
    assert!(reason.contains("cannot start"), "{reason}");
    assert!(
        !h.worker(old).terminating,
        "the old version was never asked to leave"
    );
    h.receive(
        ep,
        vec![b(b"client"), open(3, ""), chunk(3, b"hi"), choke(3)],
    );
    assert_eq!(invoked_on(&h, old), 3);
    assert_eq!(answered(&h, ep), vec![(1, true), (2, true), (3, true)]);
    assert_eq!(h.node.engine("a").map(|e| e.app_id()), Some(old.app()));
}

#[test]
fn a_running_job_is_answered_even_when_the_version_that_took_over_is_removed_first() {
    let mut h = Harness::new();
    h.behaviours.insert("a".into(), manual());
    h.deploy("a", &app(1, ""));
    let ep = h.endpoint(EP_A);
    h.receive(
        ep,
        vec![b(b"client"), open(1, ""), chunk(1, b"x"), choke(1)],
    );
    let old = h.last_worker("a");
    h.deploy("a", &app(2, ""));
    // The new version (which now holds the client's request) is removed while the old
    // worker still runs it: the old version's reply must still reach the client.
    h.input(Input::Remove {
        app: "a".into(),
        origin: cocaine_core::node::AppOrigin::CommandLine,
    });
    let old_sid = *h.worker(old).jobs.keys().next().unwrap();
    h.worker_replies(old, old_sid, &[b"v1"]);
    assert_eq!(answered(&h, ep), vec![(1, true)]);
    let out = h.all();
    assert!(out.iter().any(|o| matches!(o, Output::AppStopped { .. })));
}

#[test]
fn a_queued_job_whose_task_the_new_version_lacks_is_answered_503() {
    let mut h = Harness::new();
    h.behaviours.insert("a".into(), manual());
    h.deploy("a", &app(1, ""));
    let ep = h.endpoint(EP_A);
    for sid in 1..=2 {
        h.receive(
            ep,
            vec![b(b"client"), open(sid, ""), chunk(sid, b"x"), choke(sid)],
        );
    }
    // Version 2 serves the same endpoint under another task name: nothing to pair with.
    let renamed = format!(
        r#"{{"type": "python", "args": "local:///srv/app", "version": 2,
            "engine": {{"pool-limit": 1, "concurrency": 1, "queue-limit": 100}},
            "tasks": {{"other": {{"type": "native-server", "endpoint": "{EP_A}"}}}}}}"#
    );
    h.deploy("a", &renamed);
    let replies = native_replies(&h.all(), ep, b"client");
    assert!(
        replies.iter().any(|m| matches!(
            m,
            NativeMessage::Error {
                sid: 2,
                code: 503,
                ..
            }
        )),
        "{replies:?}"
    );
    // The running one still finishes on the old worker.
    let old = h
        .workers
        .iter()
        .find(|(_, w)| !w.jobs.is_empty())
        .map(|(id, _)| *id)
        .unwrap();
    let sid = *h.worker(old).jobs.keys().next().unwrap();
    h.worker_replies(old, sid, &[b"v1"]);
    assert_eq!(answered(&h, ep), vec![(2, false), (1, true)]);
}

#[test]
fn a_shared_routers_limit_follows_the_version_that_serves_it() {
    let with_limit = |version: u64, limit: &str| {
        format!(
            r#"{{"type": "python", "args": "local:///srv/app", "version": {version},
                "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP_A}"{limit}}}}}}}"#
        )
    };
    let mut h = Harness::new();
    h.deploy("a", &with_limit(1, r#", "max-message": 4096"#));
    let limit = h.fresh().into_iter().find_map(|o| match o {
        Output::Bind {
            address,
            max_message,
            ..
        } if address == EP_A => Some(max_message),
        _ => None,
    });
    assert_eq!(
        limit,
        Some(Some(4096)),
        "the ROUTER is bound with its task's limit"
    );
    let ep = h.endpoint(EP_A);
    let limits_set = |out: Vec<Output>| -> Vec<_> {
        out.into_iter()
            .filter_map(|o| match o {
                Output::SetMaxMessage {
                    endpoint,
                    max_message,
                } => Some((endpoint, max_message)),
                _ => None,
            })
            .collect()
    };
    // The same limit: nothing to change.
    h.deploy("a", &with_limit(2, r#", "max-message": 4096"#));
    assert_eq!(limits_set(h.fresh()), vec![]);
    // The default one: the socket follows the version that takes it over.
    h.deploy("a", &with_limit(3, ""));
    assert_eq!(limits_set(h.fresh()), vec![(ep, Some(64 << 20))]);
    assert_eq!(h.endpoint(EP_A), ep, "still the same socket");
}
