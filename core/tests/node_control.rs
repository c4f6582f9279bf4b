//! The control endpoint through a hand-driven node: every action, answered only after the
//! store has done its part, and every bad request answered with a JSON error.

use crate::harness;

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cocaine_core::node::{
    AppOrigin, BindError, Input, NodeConfig, Output, ScheduledJob, StoredApp,
};
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.1:5999";
const EP: &str = "tcp://127.0.0.1:9501";
const PUBSUB: &str = "tcp://127.0.0.1:9502";

fn node() -> (Harness, EndpointId) {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        ..NodeConfig::default()
    });
    // The control endpoint is asked for when the node is made.
    h.pump();
    let control = h.endpoint(CONTROL);
    (h, control)
}

fn echo_manifest(version: u64) -> Value {
    json!({
        "type": "python", "args": "local://app", "version": version,
        "pubsub": {"endpoint": PUBSUB},
        "tasks": {
            "serve": {"type": "native-server", "endpoint": EP},
            "later": {"type": "manual-scheduler"},
        },
    })
}

/// Sends one request frame (JSON, then binary frames) from a REQ-like client and returns the
/// parsed reply.
fn ask(h: &mut Harness, control: EndpointId, request: Value, binary: &[&[u8]]) -> Value {
    let mut frames = vec![
        b(b"operator"),
        Bytes::new(),
        Bytes::from(request.to_string()),
    ];
    frames.extend(binary.iter().map(|f| b(f)));
    ask_raw(h, control, frames)
}

fn ask_raw(h: &mut Harness, control: EndpointId, frames: Vec<Bytes>) -> Value {
    h.fresh();
    h.receive(control, frames);
    let replies = sends(&h.fresh(), control);
    assert_eq!(replies.len(), 1, "one reply per request: {replies:?}");
    let reply = &replies[0];
    assert_eq!(reply.len(), 3, "[identity, \"\", json]: {reply:?}");
    assert_eq!(&reply[0][..], b"operator");
    assert!(reply[1].is_empty());
    serde_json::from_slice(&reply[2]).expect("the reply is JSON")
}

fn error_code(reply: &Value) -> u64 {
    reply["error"]["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("expected an error, got {reply}"))
}

fn deploy(h: &mut Harness, control: EndpointId, version: u64) -> Value {
    let request = json!({"version": 1, "action": "deploy", "app": "echo", "manifest": echo_manifest(version)});
    ask(h, control, request, &[b"package.tar"])
}

#[test]
fn the_control_endpoint_is_bound_at_start_and_a_failure_is_fatal() {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        ..NodeConfig::default()
    });
    h.auto_bind = false;
    h.pump();
    let control = h.endpoint(CONTROL);
    h.input(Input::Bound {
        endpoint: control,
        result: Err(BindError::AddressInUse("Address already in use".into())),
    });
    let fatal = h.fresh().into_iter().find_map(|o| match o {
        Output::Fatal { reason } => Some(reason),
        _ => None,
    });
    let reason = fatal.expect("a fatal output");
    assert!(
        reason.contains(CONTROL) && reason.contains("in use"),
        "{reason}"
    );
}

#[test]
fn deploy_list_info_delete() {
    let (mut h, control) = node();
    let reply = deploy(&mut h, control, 3);
    assert_eq!(
        reply,
        json!({"ok": {"app": "echo", "version": 3, "state": "running", "redeployed": false}})
    );
    // Stored with its package, and the app's code path is inside the unpacked package.
    assert!(h
        .stored_apps
        .get("echo")
        .is_some_and(|(_, package)| *package));
    let spawned = h.spawned.clone();
    assert!(spawned.is_empty());
    let ep = h.endpoint(EP);
    h.receive(ep, vec![b(b"c"), open(1, ""), chunk(1, b"hi"), choke(1)]);
    let worker = h.last_worker("echo");
    assert_eq!(
        h.worker(worker).spec.argv.last().map(String::as_str),
        Some("/store/apps/echo/r1/package/app")
    );

    let list = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "list"}),
        &[],
    );
    assert_eq!(
        list,
        json!({"ok": [{
            "app": "echo", "version": 3, "origin": "store", "state": "running",
            "tasks": {
                "later": {"type": "manual-scheduler"},
                "serve": {"type": "native-server", "endpoint": EP},
            },
        }]})
    );
    let info = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "info", "app": "echo"}),
        &[],
    );
    assert_eq!(info["ok"]["engine"]["state"], "running");
    assert_eq!(info["ok"]["engine"]["tasks"]["serve"]["completed"], 1);
    assert_eq!(info["ok"]["scheduled"], json!([]));
    let node_info = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "info"}),
        &[],
    );
    assert_eq!(node_info["ok"]["apps"][0]["app"], "echo");
    assert_eq!(node_info["ok"]["jobs"]["scheduled"], 0);

    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        &[],
    );
    assert_eq!(reply, json!({"ok": {"app": "echo"}}));
    assert!(h.stored_apps.is_empty());
    assert!(h
        .all()
        .iter()
        .any(|o| matches!(o, Output::Unbind { endpoint } if *endpoint == ep)));
    let gone = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "info", "app": "echo"}),
        &[],
    );
    assert_eq!(error_code(&gone), 404);
    let again = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        &[],
    );
    assert_eq!(error_code(&again), 404);
}

#[test]
fn a_deploy_over_a_running_version_is_a_redeploy() {
    let (mut h, control) = node();
    deploy(&mut h, control, 1);
    let reply = deploy(&mut h, control, 2);
    assert_eq!(
        reply,
        json!({"ok": {"app": "echo", "version": 2, "state": "running", "redeployed": true}})
    );
    let reload = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "reload", "app": "echo"}),
        &[],
    );
    assert_eq!(reload["ok"]["version"], 2);
    assert_eq!(reload["ok"]["redeployed"], true);
}

#[test]
fn nothing_is_started_when_the_store_fails_and_bad_requests_get_json_errors() {
    let (mut h, control) = node();
    h.store_fails = Some("No space left on device".into());
    let reply = deploy(&mut h, control, 1);
    assert_eq!(error_code(&reply), 500);
    assert!(reply["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("No space left")));
    assert!(h.node.apps().next().is_none());
    h.store_fails = None;

    // A manifest the node cannot run is refused before anything is written.
    let bad = json!({"version": 1, "action": "deploy", "app": "echo",
                     "manifest": {"type": "python", "args": "local:///x", "tasks": {"t": {"type": "nope"}}}});
    let reply = ask(&mut h, control, bad, &[]);
    assert_eq!(error_code(&reply), 400);
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("tasks.t.type"));
    assert!(h.stored_apps.is_empty());

    // Not JSON, unknown action, a signed request: each a JSON error, the node goes on.
    let frames = vec![b(b"operator"), Bytes::new(), b(b"{not json")];
    assert_eq!(error_code(&ask_raw(&mut h, control, frames)), 400);
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "lsit"}),
        &[],
    );
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("did you mean \"list\""));
    let signed = json!({"version": 1, "action": "list", "user": "u", "ts": 1, "nonce": "n"});
    assert_eq!(error_code(&ask(&mut h, control, signed, &[b"sig"])), 401);
    // `peers` answers with discovery off: no peers (tests/node_cluster.rs has the rest).
    let cluster = json!({"version": 1, "action": "peers"});
    let peers = ask(&mut h, control, cluster, &[]);
    assert_eq!(peers["ok"]["peers"], json!([]), "{peers}");
    assert_eq!(peers["ok"]["discovery"], Value::Null, "{peers}");
    // `fetch` serves replicated apps only (tests/node_replication.rs has the rest).
    let fetch = json!({"version": 1, "action": "fetch", "app": "app"});
    assert_eq!(error_code(&ask(&mut h, control, fetch, &[])), 404);
    // Without the delimiter, the sender still hears back.
    h.fresh();
    h.receive(control, vec![b(b"operator"), b(b"{}")]);
    let replies = sends(&h.fresh(), control);
    assert_eq!(replies.len(), 1);
    let reply: Value = serde_json::from_slice(&replies[0][2]).unwrap();
    assert_eq!(error_code(&reply), 400);
    let list = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "list"}),
        &[],
    );
    assert_eq!(list, json!({"ok": []}));
}

#[test]
fn apps_of_the_command_line_cannot_be_changed_over_control() {
    let (mut h, control) = node();
    let manifest = serde_json::to_string(&json!({
        "type": "python", "args": "local:///srv/app",
        "tasks": {"serve": {"type": "native-server", "endpoint": EP}},
    }))
    .unwrap();
    h.deploy("echo", &manifest);
    let reply = deploy(&mut h, control, 2);
    assert_eq!(error_code(&reply), 409);
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        &[],
    );
    assert_eq!(error_code(&reply), 409);
    // Another app may not take its endpoint either.
    let other =
        json!({"version": 1, "action": "deploy", "app": "other", "manifest": echo_manifest(1)});
    let reply = ask(&mut h, control, other, &[b"tar"]);
    assert_eq!(error_code(&reply), 409);
    assert!(reply["error"]["message"].as_str().unwrap().contains(EP));
}

#[test]
fn a_stored_app_that_cannot_start_is_listed_with_its_reason() {
    let (mut h, control) = node();
    h.input(Input::Restore {
        app: "broken".into(),
        stored: Err("apps/broken/manifest.json: not JSON: EOF".into()),
    });
    let manifest = Bytes::from(echo_manifest(4).to_string());
    h.input(Input::Restore {
        app: "echo".into(),
        stored: Ok(StoredApp {
            manifest_json: manifest,
            package_dir: Some("/store/apps/echo/package".into()),
            revision: 1,
            stopped: false,
            package: None,
        }),
    });
    let list = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "list"}),
        &[],
    );
    let apps = list["ok"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0]["app"], "broken");
    assert_eq!(apps[0]["state"], "failed");
    assert!(apps[0]["error"].as_str().unwrap().contains("not JSON"));
    assert_eq!(apps[1]["app"], "echo");
    assert_eq!(apps[1]["state"], "running");
    // The broken one can be deleted.
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "delete", "app": "broken"}),
        &[],
    );
    assert_eq!(reply, json!({"ok": {"app": "broken"}}));
}

#[test]
fn a_command_line_app_wins_over_a_stored_one() {
    let (mut h, _) = node();
    let manifest = serde_json::to_string(&json!({
        "type": "python", "args": "local:///srv/cli",
        "tasks": {"serve": {"type": "native-server", "endpoint": EP}},
    }))
    .unwrap();
    h.deploy("echo", &manifest);
    h.input(Input::Restore {
        app: "echo".into(),
        stored: Ok(StoredApp {
            manifest_json: Bytes::from(echo_manifest(1).to_string()),
            package_dir: Some("/store/apps/echo/package".into()),
            revision: 1,
            stopped: false,
            package: None,
        }),
    });
    let warned = h.all().iter().any(|o| {
        matches!(o, Output::Log { message, .. } if message.contains("the stored app is not started"))
    });
    assert!(warned);
    let engine = h.node.engine("echo").unwrap();
    assert_eq!(engine.app_id().0, 1, "the command line's version runs");
}

fn published(h: &Harness) -> Vec<(String, String)> {
    h.all()
        .iter()
        .filter_map(|o| match o {
            Output::Publish { topic, value, .. } => Some((
                String::from_utf8_lossy(topic).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_scheduled_job_runs_once_at_its_time_and_leaves_the_store() {
    let (mut h, control) = node();
    deploy(&mut h, control, 1);
    let body = base64::engine::general_purpose::STANDARD.encode(b"\"payload\"");
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "schedule", "app": "echo", "task": "later", "after": 1500, "body": body}),
        &[],
    );
    let id = reply["ok"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(reply["ok"]["at"], EPOCH_MS + 1500);
    assert_eq!(h.stored_jobs.len(), 1);
    let info = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "info", "app": "echo"}),
        &[],
    );
    assert_eq!(
        info["ok"]["scheduled"],
        json!([{"id": id, "task": "later", "at": EPOCH_MS + 1500}])
    );
    h.advance(Duration::from_millis(1499));
    assert!(published(&h)
        .iter()
        .all(|(t, _)| !t.starts_with("echo:later")));
    h.advance(Duration::from_millis(1));
    let results: Vec<_> = published(&h)
        .into_iter()
        .filter(|(t, _)| t.starts_with("echo:later result"))
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].1, "\"payload\"");
    assert!(
        h.stored_jobs.is_empty(),
        "the job left the store once it ran"
    );
    h.advance(Duration::from_secs(10));
    let again = published(&h)
        .into_iter()
        .filter(|(t, _)| t.starts_with("echo:later result"))
        .count();
    assert_eq!(again, 1);

    // Wrong task type, unknown app, unknown job.
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "schedule", "app": "echo", "task": "serve", "after": 1}),
        &[],
    );
    assert_eq!(error_code(&reply), 400);
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "schedule", "app": "nope", "task": "later", "after": 1}),
        &[],
    );
    assert_eq!(error_code(&reply), 404);
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "unschedule", "id": id}),
        &[],
    );
    assert_eq!(error_code(&reply), 404);
}

#[test]
fn unschedule_cancels_and_restored_jobs_due_in_the_past_run_at_once() {
    let (mut h, control) = node();
    deploy(&mut h, control, 1);
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "schedule", "app": "echo", "task": "later", "at": EPOCH_MS + 60_000}),
        &[],
    );
    let id = reply["ok"]["id"].as_str().unwrap().to_owned();
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "unschedule", "id": id}),
        &[],
    );
    assert_eq!(reply, json!({"ok": {"id": id}}));
    assert!(h.stored_jobs.is_empty());

    // A job that was due while the node was down.
    let job = ScheduledJob {
        id: "missed-1".into(),
        app: "echo".into(),
        task: "later".into(),
        at_unix_ms: EPOCH_MS - 5_000,
        body: b(b"\"late\""),
    };
    h.stored_jobs.insert(job.id.clone(), job.clone());
    h.input(Input::RestoreJob { job: Ok(job) });
    h.advance(Duration::from_millis(0));
    let results: Vec<_> = published(&h)
        .into_iter()
        .filter(|(t, _)| t.starts_with("echo:later result"))
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].1, "\"late\"");
    assert!(h.stored_jobs.is_empty());
}

#[test]
fn watched_apps_follow_their_file_only() {
    let (mut h, control) = node();
    let manifest = serde_json::to_string(&json!({
        "type": "python", "args": "local:///srv/app",
        "tasks": {"serve": {"type": "native-server", "endpoint": EP}},
    }))
    .unwrap();
    h.input(Input::Deploy {
        manifest: Box::new(harness::manifest("w", &manifest)),
        origin: AppOrigin::Watched,
    });
    // A command-line removal does not touch it; its own origin's does.
    h.input(Input::Remove {
        app: "w".into(),
        origin: AppOrigin::CommandLine,
    });
    assert_eq!(h.node.apps().collect::<Vec<_>>(), vec!["w"]);
    let list = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "list"}),
        &[],
    );
    assert_eq!(list["ok"][0]["origin"], "watched");
    h.input(Input::Remove {
        app: "w".into(),
        origin: AppOrigin::Watched,
    });
    assert!(h.node.apps().next().is_none());
}

#[test]
fn a_refused_redeploy_restores_the_running_revision_and_a_replaced_one_is_dropped() {
    let (mut h, control) = node();
    deploy(&mut h, control, 1);
    deploy(&mut h, control, 2);
    // Version 1 left once version 2 took over: its revision goes, version 2's is current.
    assert_eq!(h.current_revision.get("echo"), Some(&2));
    assert_eq!(
        h.revisions.iter().cloned().collect::<Vec<_>>(),
        vec![("echo".to_owned(), 2)]
    );
    // Version 3 wants an endpoint it cannot bind.
    h.auto_bind = false;
    let mut manifest = echo_manifest(3);
    manifest["tasks"]["extra"] =
        json!({"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:9503"});
    h.fresh();
    h.receive(
        control,
        vec![
            b(b"operator"),
            Bytes::new(),
            Bytes::from(
                json!({"version": 1, "action": "deploy", "app": "echo", "manifest": manifest})
                    .to_string(),
            ),
            b(b"tar"),
        ],
    );
    let extra = h.endpoint("tcp://127.0.0.1:9503");
    h.input(Input::Bound {
        endpoint: extra,
        result: Err(BindError::AddressInUse("Address already in use".into())),
    });
    let replies = sends(&h.fresh(), control);
    let reply: Value = serde_json::from_slice(&replies[0][2]).unwrap();
    assert_eq!(error_code(&reply), 500);
    assert_eq!(
        h.current_revision.get("echo"),
        Some(&2),
        "the running revision is current again"
    );
    assert_eq!(
        h.revisions.iter().cloned().collect::<Vec<_>>(),
        vec![("echo".to_owned(), 2)]
    );
    // A new worker of the running version loads version 2's files.
    h.auto_bind = true;
    let ep = h.endpoint(EP);
    h.receive(ep, vec![b(b"c"), open(1, ""), chunk(1, b"hi"), choke(1)]);
    let worker = h.last_worker("echo");
    assert_eq!(
        h.worker(worker).spec.argv.last().map(String::as_str),
        Some("/store/apps/echo/r2/package/app")
    );
}

#[test]
fn a_deleted_app_is_gone_by_name_at_once_while_its_last_job_finishes() {
    let (mut h, control) = node();
    h.behaviours.insert(
        "echo".into(),
        Behaviour {
            answer: Answer::Manual,
            ..Behaviour::default()
        },
    );
    deploy(&mut h, control, 1);
    let ep = h.endpoint(EP);
    h.receive(ep, vec![b(b"c"), open(1, ""), chunk(1, b"slow"), choke(1)]);
    let worker = h.last_worker("echo");
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "delete", "app": "echo"}),
        &[],
    );
    assert_eq!(reply, json!({"ok": {"app": "echo"}}));
    // Its worker still runs the job, but the name is free.
    assert!(!h.worker(worker).exited);
    let list = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "list"}),
        &[],
    );
    assert_eq!(list, json!({"ok": []}));
    let info = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "info", "app": "echo"}),
        &[],
    );
    assert_eq!(error_code(&info), 404);
    // Deploying the name again is a fresh deploy; it takes over the endpoint still open.
    h.behaviours.remove("echo");
    let reply = deploy(&mut h, control, 2);
    assert_eq!(
        reply,
        json!({"ok": {"app": "echo", "version": 2, "state": "running", "redeployed": false}})
    );
    // The old job still ends, answered once.
    let sid = *h.worker(worker).jobs.keys().next().unwrap();
    h.worker_replies(worker, sid, &[b"done"]);
    let replies = native_replies(&h.all(), ep, b"c");
    assert_eq!(
        replies
            .iter()
            .filter(|m| matches!(
                m,
                cocaine_core::codec::native::NativeMessage::Choke { sid: 1 }
            ))
            .count(),
        1
    );
}
