//! A deploy says whether the app can serve (issue 13): with `pool-min` ≥ 1 it is answered
//! once the first worker has said hello (`running`), or has failed (500, with the failure
//! in one line); meanwhile `list` shows it `starting`. Code the store finds missing is 400.

use crate::harness;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::node::{NodeConfig, StoreError};
use cocaine_core::process::ExitStatus;
use cocaine_core::EndpointId;
use harness::*;
use serde_json::{json, Value};

const CONTROL: &str = "tcp://127.0.0.1:5999";

fn node() -> (Harness, EndpointId) {
    let mut h = Harness::with_config(NodeConfig {
        control: vec![CONTROL.to_owned()],
        ..NodeConfig::default()
    });
    h.pump();
    let control = h.endpoint(CONTROL);
    (h, control)
}

fn manifest(pool_min: u64) -> Value {
    json!({
        "type": "python", "args": "local://app.py",
        "engine": {"pool-min": pool_min, "startup-timeout": 5},
        "tasks": {"serve": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9501"}},
    })
}

fn send(h: &mut Harness, control: EndpointId, request: Value) {
    h.fresh();
    h.receive(
        control,
        vec![
            b(b"op"),
            Bytes::new(),
            Bytes::from(request.to_string()),
            b(b"tar"),
        ],
    );
}

fn replies(h: &mut Harness, control: EndpointId) -> Vec<Value> {
    sends(&h.fresh(), control)
        .iter()
        .map(|r| serde_json::from_slice(&r[2]).unwrap())
        .collect()
}

fn deploy_request(pool_min: u64) -> Value {
    json!({"version": 1, "action": "deploy", "app": "a", "manifest": manifest(pool_min)})
}

fn state_in_list(h: &mut Harness, control: EndpointId) -> Value {
    h.receive(
        control,
        vec![
            b(b"op"),
            Bytes::new(),
            Bytes::from(json!({"version": 1, "action": "list"}).to_string()),
        ],
    );
    let list = replies(h, control).pop().unwrap();
    list["ok"][0].clone()
}

fn manual() -> Behaviour {
    Behaviour {
        handshake: false,
        ..Behaviour::default()
    }
}

#[test]
fn the_reply_waits_for_the_first_workers_hello() {
    let (mut h, control) = node();
    h.behaviours.insert("a".into(), manual());
    send(&mut h, control, deploy_request(1));
    assert!(
        replies(&mut h, control).is_empty(),
        "no answer before the worker is up"
    );
    assert_eq!(state_in_list(&mut h, control)["state"], "starting");
    let worker = h.last_worker("a");
    h.fresh();
    h.handshake(worker);
    let answered = replies(&mut h, control);
    assert_eq!(
        answered,
        vec![json!({"ok": {"app": "a", "version": 0, "state": "running", "redeployed": false}})]
    );
    assert_eq!(state_in_list(&mut h, control)["state"], "running");
}

#[test]
fn a_first_worker_that_fails_makes_the_deploy_a_500_with_one_line() {
    let (mut h, control) = node();
    h.behaviours.insert("a".into(), manual());
    send(&mut h, control, deploy_request(1));
    let worker = h.last_worker("a");
    h.fresh();
    h.stderr(worker, "Traceback (most recent call last):");
    h.stderr(worker, "  File \"/srv/app.py\", line 1, in <module>");
    h.stderr(worker, "ModuleNotFoundError: No module named 'nope'");
    h.exit(worker, ExitStatus::Code(1));
    let answered = replies(&mut h, control);
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["error"]["code"], 500);
    let message = answered[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("a: deployed, but it is broken: worker "),
        "{message}"
    );
    assert!(message.contains("No module named 'nope'"), "{message}");
    assert!(
        !message.contains('\n') && !message.contains("Traceback"),
        "{message}"
    );
    let entry = state_in_list(&mut h, control);
    assert_eq!(entry["state"], "broken", "{entry}");
}

#[test]
fn a_worker_that_never_says_hello_is_answered_at_the_startup_timeout() {
    let (mut h, control) = node();
    h.behaviours.insert(
        "a".into(),
        Behaviour {
            handshake: false,
            answer: Answer::Manual,
            obey: true,
        },
    );
    send(&mut h, control, deploy_request(2));
    h.advance(Duration::from_secs(4));
    assert!(replies(&mut h, control).is_empty());
    h.advance(Duration::from_secs(2));
    let answered = replies(&mut h, control);
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["error"]["code"], 500, "{answered:?}");
}

#[test]
fn pool_min_0_is_answered_at_once() {
    let (mut h, control) = node();
    send(&mut h, control, deploy_request(0));
    let answered = replies(&mut h, control);
    assert_eq!(answered[0]["ok"]["state"], "running", "{answered:?}");
}

#[test]
fn code_the_store_finds_missing_is_a_400_and_nothing_runs() {
    let (mut h, control) = node();
    h.store_refuses = Some(StoreError::MissingCode(
        "app \"a\": args: local://app.py does not exist in the package".into(),
    ));
    send(&mut h, control, deploy_request(1));
    let answered = replies(&mut h, control);
    assert_eq!(answered[0]["error"]["code"], 400, "{answered:?}");
    assert!(answered[0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does not exist in the package"));
    assert!(h.node.apps().next().is_none());
    assert!(h.spawned.is_empty());
}
