//! The http-server task's keys: defaults, errors that name their key, and the choice of
//! event by longest path prefix.

use std::sync::Arc;
use std::time::Duration;

use cocaine_core::http::config::{HttpConfig, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_HEADER};
use cocaine_core::http::response::status_for_code;
use serde_json::json;

#[test]
fn defaults_take_max_body_from_max_message() {
    let task = json!({"type": "http-server", "endpoint": "tcp://127.0.0.1:8080"});
    let config = HttpConfig::from_task(&task, 1234).unwrap();
    assert_eq!(config, HttpConfig::with_defaults(1234));
    assert_eq!(config.max_header, DEFAULT_MAX_HEADER);
    assert_eq!(config.max_body, 1234);
    assert_eq!(config.header_timeout, DEFAULT_HEADER_TIMEOUT);
    assert_eq!(config.routes, None);
}

#[test]
fn every_key_is_read() {
    let task = json!({
        "type": "http-server", "endpoint": "tcp://127.0.0.1:8080",
        "routes": {"/api": "api", "/": "site"},
        "max-header": 8192, "max-body": 100, "header-timeout": 2500
    });
    let config = HttpConfig::from_task(&task, 1).unwrap();
    assert_eq!(config.max_header, 8192);
    assert_eq!(config.max_body, 100);
    assert_eq!(config.header_timeout, Duration::from_millis(2500));
    assert_eq!(config.routes.unwrap().len(), 2);
}

#[test]
fn every_problem_names_its_key() {
    let task = json!({
        "routes": {"api": "x", "/ok": "", "/_": "_private", "/n": 5},
        "max-header": 0, "max-body": -1, "header-timeout": "10s"
    });
    let problems = HttpConfig::from_task(&task, 1).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "routes./_",
            "routes./n",
            "routes./ok",
            "routes.api",
            "max-header",
            "max-body",
            "header-timeout"
        ]
    );
    assert!(problems[3].message.contains("starting with /"));
    assert!(problems[4].message.contains("positive integer, found 0"));
    assert_eq!(
        problems[6].to_string(),
        "header-timeout: expected a positive integer, found \"10s\""
    );
    for bad in [json!({"routes": []}), json!({"routes": {}})] {
        let problems = HttpConfig::from_task(&bad, 1).unwrap_err();
        assert_eq!(problems[0].key, "routes");
    }
    assert_eq!(HttpConfig::from_task(&json!(5), 1).unwrap_err().len(), 1);
}

#[test]
fn the_longest_matching_prefix_wins_on_segment_boundaries() {
    let task = json!({"routes": {"/api": "api", "/api/v2": "v2", "/static/": "files"}});
    let config = HttpConfig::from_task(&task, 1).unwrap();
    let web: Arc<str> = Arc::from("web");
    let event = |path| config.event_for(path, &web).map(|e| e.to_string());
    assert_eq!(event("/api").as_deref(), Some("api"));
    assert_eq!(event("/api/users").as_deref(), Some("api"));
    assert_eq!(event("/api/v2").as_deref(), Some("v2"));
    assert_eq!(event("/api/v2/x").as_deref(), Some("v2"));
    assert_eq!(event("/api/v20").as_deref(), Some("api"));
    assert_eq!(event("/apis"), None);
    assert_eq!(event("/static/a.css").as_deref(), Some("files"));
    assert_eq!(event("/static"), None);
    assert_eq!(event("/"), None);
    // Without routes every request is the task's event.
    let plain = HttpConfig::with_defaults(1);
    assert_eq!(plain.event_for("/anything", &web), Some(&web));
    // "/" catches everything else.
    let task = json!({"routes": {"/": "site", "/api": "api"}});
    let config = HttpConfig::from_task(&task, 1).unwrap();
    assert_eq!(&**config.event_for("/x/y", &web).unwrap(), "site");
    assert_eq!(&**config.event_for("/api/1", &web).unwrap(), "api");
}

#[test]
fn engine_codes_map_to_statuses() {
    let table = [
        (400, Some(400)),
        (404, Some(404)),
        (413, Some(413)),
        (431, Some(431)),
        (499, None),
        (500, Some(500)),
        (502, Some(502)),
        (503, Some(503)),
        (504, Some(504)),
        (520, Some(504)),
        (429, Some(429)),
        (0, Some(500)),
        (200, Some(500)),
        (600, Some(500)),
        (u32::MAX, Some(500)),
    ];
    for (code, status) in table {
        assert_eq!(status_for_code(code), status, "code {code}");
    }
}
