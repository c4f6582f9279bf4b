//! The operator's verbs over control (issue 13): status, stop and start (kept stopped across
//! a restart), scale at run time, and quit.

use crate::harness;

use bytes::Bytes;
use cocaine_core::node::{Input, NodeConfig, Output, StoredApp};
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.1:5999";
const EP: &str = "tcp://127.0.0.1:9501";

fn node() -> (Harness, EndpointId) {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        ..NodeConfig::default()
    });
    h.pump();
    let control = h.endpoint(CONTROL);
    (h, control)
}

fn manifest() -> Value {
    json!({
        "type": "python", "args": "local:///srv/app.py",
        "engine": {"pool-min": 1, "pool-limit": 4},
        "tasks": {"serve": {"type": "native-server", "endpoint": EP}},
    })
}

fn ask(h: &mut Harness, control: EndpointId, request: Value) -> Value {
    h.fresh();
    h.receive(
        control,
        vec![b(b"op"), Bytes::new(), Bytes::from(request.to_string())],
    );
    let replies = sends(&h.fresh(), control);
    assert_eq!(replies.len(), 1, "{replies:?}");
    serde_json::from_slice(&replies[0][2]).unwrap()
}

fn act(h: &mut Harness, control: EndpointId, action: &str, app: &str) -> Value {
    ask(
        h,
        control,
        json!({"version": 1, "action": action, "app": app}),
    )
}

fn deployed() -> (Harness, EndpointId) {
    let (mut h, control) = node();
    let reply = ask(
        &mut h,
        control,
        json!({"version": 1, "action": "deploy", "app": "a", "manifest": manifest()}),
    );
    assert_eq!(reply["ok"]["state"], "running", "{reply}");
    (h, control)
}

fn state(h: &mut Harness, control: EndpointId) -> Value {
    let list = ask(h, control, json!({"version": 1, "action": "list"}));
    list["ok"][0]["state"].clone()
}

#[test]
fn status_has_every_app_with_workers_queue_and_counts() {
    let (mut h, control) = deployed();
    let status = ask(&mut h, control, json!({"version": 1, "action": "status"}));
    let app = &status["ok"]["apps"][0];
    assert_eq!(app["app"], "a");
    assert_eq!(app["state"], "running");
    assert_eq!(app["workers"]["ready"], 1, "{app}");
    assert_eq!(app["queue"], 0);
    assert_eq!(app["pool"], json!({"min": 1, "limit": 4}));
    assert_eq!(app["jobs"]["accepted"], 0);
    assert!(app["stats"]["serve"].is_object(), "{app}");
    assert!(status["ok"]["uptime_ms"].is_u64());
}

#[test]
fn stop_keeps_the_app_stopped_in_the_store_and_start_brings_it_back() {
    let (mut h, control) = deployed();
    let workers = h.workers_of("a");
    let reply = act(&mut h, control, "stop", "a");
    assert_eq!(reply, json!({"ok": {"app": "a", "state": "stopped"}}));
    assert!(h.stopped_apps.contains("a"));
    assert!(h.all().iter().any(|o| matches!(o, Output::Unbind { .. })));
    assert!(
        workers.iter().all(|w| h.worker(*w).exited),
        "its workers leave"
    );
    assert_eq!(state(&mut h, control), "stopped");
    // Stopping again is fine; reload and scale say to start it.
    assert_eq!(act(&mut h, control, "stop", "a")["ok"]["state"], "stopped");
    assert_eq!(act(&mut h, control, "reload", "a")["error"]["code"], 409);
    let scale = json!({"version": 1, "action": "scale", "app": "a", "pool-min": 2});
    assert_eq!(ask(&mut h, control, scale)["error"]["code"], 409);

    let reply = act(&mut h, control, "start", "a");
    assert_eq!(reply["ok"]["state"], "running", "{reply}");
    assert!(!h.stopped_apps.contains("a"));
    assert_eq!(state(&mut h, control), "running");
    assert_eq!(act(&mut h, control, "start", "a")["ok"]["state"], "running");
    assert_eq!(act(&mut h, control, "stop", "nope")["error"]["code"], 404);
    assert_eq!(act(&mut h, control, "start", "nope")["error"]["code"], 404);
}

#[test]
fn an_app_stored_stopped_is_restored_stopped() {
    let (mut h, control) = node();
    h.input(Input::Restore {
        app: "a".into(),
        stored: Ok(StoredApp {
            manifest_json: Bytes::from(manifest().to_string()),
            package_dir: None,
            revision: 3,
            stopped: true,
            package: None,
        }),
    });
    assert!(h.spawned.is_empty(), "nothing starts");
    assert_eq!(state(&mut h, control), "stopped");
    assert_eq!(act(&mut h, control, "start", "a")["ok"]["state"], "running");
    // Deleting works on a stopped app too.
    act(&mut h, control, "stop", "a");
    assert_eq!(
        act(&mut h, control, "delete", "a"),
        json!({"ok": {"app": "a"}})
    );
    assert_eq!(
        ask(&mut h, control, json!({"version": 1, "action": "list"})),
        json!({"ok": []})
    );
}

#[test]
fn scale_changes_the_pool_at_once() {
    let (mut h, control) = deployed();
    let scale = |min: Option<u64>, limit: Option<u64>| {
        let mut request = json!({"version": 1, "action": "scale", "app": "a"});
        if let Some(min) = min {
            request["pool-min"] = json!(min);
        }
        if let Some(limit) = limit {
            request["pool-limit"] = json!(limit);
        }
        request
    };
    let reply = ask(&mut h, control, scale(Some(3), None));
    assert_eq!(
        reply,
        json!({"ok": {"app": "a", "pool-min": 3, "pool-limit": 4}})
    );
    assert_eq!(h.workers_of("a").len(), 3, "two more started");
    let reply = ask(&mut h, control, scale(Some(1), Some(1)));
    assert_eq!(reply["ok"]["pool-limit"], 1);
    let live = h
        .workers_of("a")
        .into_iter()
        .filter(|w| !h.worker(*w).exited)
        .count();
    assert_eq!(live, 1, "idle workers above the limit leave");
    assert_eq!(
        ask(&mut h, control, scale(Some(2), Some(1)))["error"]["code"],
        400
    );
    assert_eq!(
        ask(&mut h, control, scale(None, Some(0)))["error"]["code"],
        400
    );
    assert_eq!(
        ask(&mut h, control, scale(None, None))["error"]["code"],
        400
    );
    let other = json!({"version": 1, "action": "scale", "app": "b", "pool-min": 1});
    assert_eq!(ask(&mut h, control, other)["error"]["code"], 404);
}

#[test]
fn quit_is_answered_then_the_node_stops() {
    let (mut h, control) = deployed();
    let reply = ask(&mut h, control, json!({"version": 1, "action": "quit"}));
    assert_eq!(reply, json!({"ok": {"quitting": true}}));
    assert!(
        h.all().iter().any(|o| matches!(o, Output::Stopped)),
        "the node stops once its apps are gone"
    );
}
