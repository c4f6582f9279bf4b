//! The environment a worker is started with follows its own app's manifest: `engine.inline`
//! becomes `COCAINE_INLINE` (`1` or `0`) for that app's workers only, and without the key the
//! variable is not set at all, so the node's own environment decides.

use crate::harness;

use harness::*;

fn app(port: u16, engine: &str) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/app.py",
            "engine": {{"pool-min": 1{engine}}},
            "tasks": {{"serve": {{"type": "native-server",
                                 "endpoint": "tcp://127.0.0.1:{port}"}}}}}}"#
    )
}

fn inline_of(h: &Harness, app: &str) -> Vec<Option<String>> {
    h.workers_of(app)
        .into_iter()
        .map(|w| {
            let env = &h.worker(w).spec.env;
            let values: Vec<&String> = env
                .iter()
                .filter(|(k, _)| k == "COCAINE_INLINE")
                .map(|(_, v)| v)
                .collect();
            assert!(values.len() <= 1, "COCAINE_INLINE given twice: {env:?}");
            values.first().map(|v| (*v).clone())
        })
        .collect()
}

#[test]
fn inline_key_sets_cocaine_inline_for_that_apps_workers_only() {
    let mut h = Harness::new();
    h.deploy("fast", &app(9601, r#", "inline": true, "concurrency": 4"#));
    h.deploy("plain", &app(9602, ""));
    h.deploy("off", &app(9603, r#", "inline": false"#));
    h.pump();

    assert_eq!(inline_of(&h, "fast"), [Some("1".to_owned())]);
    assert_eq!(inline_of(&h, "plain"), [None]);
    assert_eq!(inline_of(&h, "off"), [Some("0".to_owned())]);
    // The rest of the worker environment is untouched by the key.
    let fast = h.worker(h.last_worker("fast"));
    assert!(fast
        .spec
        .env
        .iter()
        .any(|(k, v)| k == "COCAINE_CONCURRENCY" && v == "4"));
}

#[test]
fn a_replacement_worker_keeps_the_apps_setting() {
    let mut h = Harness::new();
    h.deploy("fast", &app(9604, r#", "inline": true"#));
    h.pump();
    let first = h.last_worker("fast");
    h.exit(first, cocaine_core::process::ExitStatus::Code(1));
    h.pump();
    let workers = h.workers_of("fast");
    assert!(
        workers.len() >= 2,
        "the pool-min worker is replaced: {workers:?}"
    );
    assert!(inline_of(&h, "fast")
        .iter()
        .all(|v| v.as_deref() == Some("1")));
}
