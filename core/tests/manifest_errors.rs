//! One test per class of manifest error: each names the app, the key path and what is wrong.

use cocaine_core::manifest::{Manifest, ManifestError};
use std::path::Path;

/// A valid manifest with `patch` spliced in as extra top-level text (`"key": value, `).
fn with(patch: &str) -> String {
    format!(
        r#"{{{patch} "type": "python", "args": "local:///srv/echo",
            "tasks": {{"event": {{"type": "native-server", "endpoint": "tcp://*:9100"}}}}}}"#
    )
}

fn err(json: &str) -> ManifestError {
    match Manifest::parse("echo", json.as_bytes(), None) {
        Ok(m) => panic!("expected an error, parsed {m:?}"),
        Err(e) => {
            assert!(!e.problems.is_empty());
            assert_eq!(e.app, "echo");
            e
        }
    }
}

/// Asserts one problem at `path` whose message contains `needle`, showing all on failure.
fn assert_has(e: &ManifestError, path: &str, needle: &str) {
    assert!(
        e.has(path, needle),
        "no problem at {path:?} containing {needle:?} in:\n{e}"
    );
}

fn engine(engine: &str) -> ManifestError {
    err(&with(&format!(r#""engine": {engine},"#)))
}

#[test]
fn display_names_app_path_and_value() {
    let e = err(r#"{"type": "python", "args": "local:///srv/echo",
            "tasks": {"event": {"type": "native-server", "endpoint": 5}}}"#);
    assert_eq!(
        e.to_string(),
        r#"app "echo": tasks.event.endpoint: expected a string, found 5"#
    );
    assert_eq!(e.problems.len(), 1);
}

#[test]
fn unknown_key_with_did_you_mean() {
    let e = engine(r#"{"pool_limit": 3, "pool-limt": 4, "colour": 1}"#);
    assert_has(
        &e,
        "engine.pool_limit",
        r#"unknown key; did you mean "pool-limit"?"#,
    );
    assert_has(&e, "engine.pool-limt", r#"did you mean "pool-limit"?"#);
    assert!(e
        .problems
        .iter()
        .any(|p| p.path == "engine.colour" && p.message == "unknown key"));
    let e = err(&with(r#""tsaks": {},"#));
    assert_has(&e, "tsaks", r#"did you mean "tasks"?"#);
    let e = err(r#"{"type": "python", "args": "local:///a",
            "tasks": {"t": {"type": "recurring-timer", "interval": 1, "imediate": true}}}"#);
    assert_has(&e, "tasks.t.imediate", r#"did you mean "immediate"?"#);
    let e = err(&with(r#""cluster": {"spilover": true},"#));
    assert_has(&e, "cluster.spilover", r#"did you mean "spillover"?"#);
}

#[test]
fn wrong_type_with_path() {
    let e = err(r#"{"type": "python", "args": "local:///srv/echo",
            "tasks": {"event": {"type": "native-server", "endpoint": ["tcp://*:1"]}}}"#);
    assert_has(
        &e,
        "tasks.event.endpoint",
        "expected a string, found an array",
    );
    let e = engine(r#"{"pool-limit": "20", "heartbeat-timeout": true}"#);
    assert_has(
        &e,
        "engine.pool-limit",
        r#"expected an integer, found "20""#,
    );
    assert_has(
        &e,
        "engine.heartbeat-timeout",
        "expected a number of seconds, found true",
    );
    let e = err(&with(r#""engine": [],"#));
    assert_has(&e, "engine", "expected an object, found an array");
    let e = err(&with(r#""version": "1","#));
    assert_has(&e, "version", "expected an integer");
    let e = err(&with(r#""security": {"sign": "yes"},"#));
    assert_has(
        &e,
        "security.sign",
        r#"expected true or false, found "yes""#,
    );
}

#[test]
fn float_where_an_integer_is_needed() {
    let e = engine(r#"{"pool-limit": 10.5}"#);
    assert_has(&e, "engine.pool-limit", "expected an integer, found 10.5");
}

#[test]
fn zero_and_negative_limits() {
    let e = engine(
        r#"{"pool-limit": 0, "queue-limit": -1, "concurrency": 0, "grow-threshold": 0,
            "heartbeat-timeout": 0, "startup-timeout": -2.5, "max-message": 0,
            "restart-intensity": -1, "max-requests": -5}"#,
    );
    assert_has(&e, "engine.pool-limit", "must be at least 1, found 0");
    assert_has(&e, "engine.queue-limit", "must be at least 1, found -1");
    assert_has(&e, "engine.concurrency", "must be at least 1");
    assert_has(&e, "engine.grow-threshold", "must be at least 1");
    assert_has(
        &e,
        "engine.heartbeat-timeout",
        "must be more than 0 seconds, found 0",
    );
    assert_has(
        &e,
        "engine.startup-timeout",
        "must be more than 0 seconds, found -2.5",
    );
    assert_has(&e, "engine.max-message", "must be at least 1");
    assert_has(
        &e,
        "engine.restart-intensity",
        "must be at least 0, found -1",
    );
    assert_has(&e, "engine.max-requests", "must be at least 0, found -5");
    let e = err(&with(r#""version": -1,"#));
    assert_has(&e, "version", "must be at least 0, found -1");
    let e = err(r#"{"type": "python", "args": "local:///a",
            "tasks": {"t": {"type": "drifting-timer", "interval": 0}}}"#);
    assert_has(&e, "tasks.t.interval", "must be at least 1, found 0");
    let e = engine(r#"{"restart-intensity": 4294967296}"#);
    assert_has(&e, "engine.restart-intensity", "too large");
    let e = engine(r#"{"idle-timeout": 1e300}"#);
    assert_has(&e, "engine.idle-timeout", "too large");
}

#[test]
fn pool_min_above_pool_limit() {
    let e = engine(r#"{"pool-min": 5, "pool-limit": 4}"#);
    assert_has(
        &e,
        "engine.pool-min",
        "pool-min (5) must not exceed pool-limit (4)",
    );
    // Against the default pool-limit of 10 too.
    let e = engine(r#"{"pool-min": 11}"#);
    assert_has(&e, "engine.pool-min", "must not exceed pool-limit (10)");
}

#[test]
fn heartbeat_interval_not_below_timeout() {
    let e = engine(r#"{"heartbeat-interval": 30}"#);
    assert_has(
        &e,
        "engine.heartbeat-interval",
        "must be less than heartbeat-timeout",
    );
    let e = engine(r#"{"heartbeat-timeout": 2}"#);
    assert_has(
        &e,
        "engine.heartbeat-timeout",
        "must be less than heartbeat-timeout",
    );
}

#[test]
fn missing_tasks() {
    let e = err(r#"{"type": "python", "args": "local:///srv/echo"}"#);
    assert_eq!(e.to_string(), r#"app "echo": missing key "tasks""#);
    let e = err(r#"{"tasks": {"t": {"type": "manual-scheduler"}}}"#);
    assert!(e.has("", r#"missing key "type""#));
    assert!(e.has("", r#"missing key "args""#));
}

#[test]
fn empty_tasks() {
    let e = err(r#"{"type": "python", "args": "local:///srv/echo", "tasks": {}}"#);
    assert_has(&e, "tasks", "at least one task");
    let e = err(r#"{"type": "python", "args": "local:///srv/echo", "tasks": []}"#);
    assert_has(
        &e,
        "tasks",
        "expected an object of tasks by name, found an array",
    );
}

#[test]
fn unknown_task_type() {
    let e = err(r#"{"type": "python", "args": "local:///a",
            "tasks": {"t": {"type": "recuring-timer", "interval": 1},
                      "u": {"type": "websocket"}, "v": {"interval": 5}}}"#);
    assert_has(&e, "tasks.t.type", r#"unknown task type "recuring-timer""#);
    assert_has(&e, "tasks.t.type", r#"did you mean "recurring-timer"?"#);
    assert_has(
        &e,
        "tasks.u.type",
        "expected one of recurring-timer, drifting-timer",
    );
    assert_has(&e, "tasks.v", r#"missing key "type""#);
    assert!(!e.to_string().contains("websocket\"; did you mean"));
}

#[test]
fn unknown_backend_and_app_type() {
    let e = engine(r#"{"backend": "proces"}"#);
    assert_has(
        &e,
        "engine.backend",
        r#"unknown value "proces"; expected one of "process" or "thread"; did you mean "process"?"#,
    );
    let e = err(
        r#"{"type": "pyhton", "args": "local:///a", "tasks": {"t": {"type": "manual-scheduler"}}}"#,
    );
    assert_has(&e, "type", r#"did you mean "python"?"#);
    let e = engine(r#"{"pool-policy": "busy"}"#);
    assert_has(
        &e,
        "engine.pool-policy",
        r#"expected one of "queue" or "busyness""#,
    );
}

#[test]
fn python_on_thread_backend() {
    let e = engine(r#"{"backend": "thread"}"#);
    assert_eq!(
        e.to_string(),
        r#"app "echo": engine.backend: python apps cannot run on the thread backend; use process"#
    );
    let e = err(
        r#"{"type": "binary", "args": "local:///a", "engine": {"backend": "thread"},
            "tasks": {"t": {"type": "manual-scheduler"}}}"#,
    );
    assert_has(
        &e,
        "engine.backend",
        "binary apps cannot run on the thread backend",
    );
    for app_type in ["javascript", "perl"] {
        let e = err(&format!(
            r#"{{"type": "{app_type}", "args": "local:///a", "engine": {{"backend": "thread"}},
                "tasks": {{"t": {{"type": "manual-scheduler"}}}}}}"#
        ));
        assert_has(
            &e,
            "engine.backend",
            &format!("{app_type} apps cannot run on the thread backend"),
        );
    }
}

#[test]
fn reserved_and_bad_task_names() {
    let e = err(r#"{"type": "python", "args": "local:///a",
            "tasks": {"engine": {"type": "manual-scheduler"}, "_private": {"type": "manual-scheduler"},
                      "": {"type": "manual-scheduler"}, "two words": {"type": "manual-scheduler"}}}"#);
    assert_has(&e, "tasks.engine", "reserved");
    assert_has(&e, "tasks._private", "must not start with _");
    assert_has(&e, "tasks", "must not be empty");
    assert_has(&e, "tasks.two words", "spaces");
    assert_eq!(e.problems.len(), 4);
}

#[test]
fn bad_endpoints() {
    let task = |ty: &str, ep: &str| {
        err(&format!(
            r#"{{"type": "python", "args": "local:///a",
                "tasks": {{"t": {{"type": "{ty}", "endpoint": "{ep}"{extra}}}}}}}"#,
            extra = if ty == "raw-server" {
                r#", "framing": "line""#
            } else {
                ""
            }
        ))
    };
    assert_has(
        &task("native-server", "tcp://*"),
        "tasks.t.endpoint",
        "has no port",
    );
    assert_has(
        &task("native-server", "tcp://*:70000"),
        "tasks.t.endpoint",
        "port \"70000\"",
    );
    assert_has(
        &task("native-server", "udp://*:1"),
        "tasks.t.endpoint",
        "unsupported transport",
    );
    assert_has(
        &task("native-server", "localhost:1"),
        "tasks.t.endpoint",
        "is not an endpoint",
    );
    assert_has(
        &task("zeromq-sink", "tcp://300.1.1.1:1"),
        "tasks.t.endpoint",
        "not an IPv4",
    );
    assert_has(
        &task("raw-server", "ipc:///tmp/x"),
        "tasks.t.endpoint",
        "TCP only",
    );
    assert_has(
        &task("zeromq-subscriber", "tcp://*:1"),
        "tasks.t.endpoint",
        "cannot connect",
    );
    assert_has(
        &task("zeromq-subscriber", "tcp://h:*"),
        "tasks.t.endpoint",
        "cannot connect",
    );
    let e = err(&with(r#""pubsub": {"endpoint": "tcp://lo"},"#));
    assert_has(&e, "pubsub.endpoint", "has no port");
    let e = err(&with(r#""pubsub": {},"#));
    assert_has(&e, "pubsub", r#"missing key "endpoint""#);
}

#[test]
fn duplicate_endpoints() {
    let e = err(
        r#"{"type": "python", "args": "local:///a", "pubsub": {"endpoint": "tcp://lo:9200"},
            "tasks": {"a": {"type": "native-server", "endpoint": "tcp://lo:9100"},
                      "b": {"type": "zeromq-server", "endpoint": "tcp://lo:9100"},
                      "c": {"type": "zeromq-sink", "endpoint": "tcp://*:9200"},
                      "d": {"type": "native-sink", "endpoint": "ipc:///tmp/s"},
                      "e": {"type": "raw-server", "endpoint": "tcp://0.0.0.0:9100", "framing": "stream"},
                      "f": {"type": "zeromq-sink", "endpoint": "ipc:///tmp/s"}}}"#,
    );
    assert_has(
        &e,
        "tasks.b.endpoint",
        r#""tcp://lo:9100" is already bound by tasks.a.endpoint"#,
    );
    assert_has(
        &e,
        "tasks.c.endpoint",
        r#"clashes with "tcp://lo:9200" of pubsub.endpoint"#,
    );
    assert_has(&e, "tasks.e.endpoint", "of tasks.a.endpoint");
    assert_has(&e, "tasks.f.endpoint", "already bound by tasks.d.endpoint");
    assert_eq!(e.problems.len(), 4);
}

#[test]
fn several_problems_together() {
    let e = err(
        r#"{"type": "python", "args": "http://example.com/app.tgz", "version": 1.5,
            "engine": {"pool-limit": 0, "backend": "thread"},
            "tasks": {"event": {"type": "native-server", "endpoint": 5},
                      "tick": {"type": "recurring-timer"}},
            "extra": true}"#,
    );
    let paths: Vec<&str> = e.problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "args",
        "version",
        "engine.backend",
        "engine.pool-limit",
        "tasks.event.endpoint",
        "tasks.tick",
        "extra",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from:\n{e}");
    }
    assert_has(
        &e,
        "args",
        r#"only local:// is supported, found scheme "http""#,
    );
    assert_has(&e, "tasks.tick", r#"missing key "interval""#);
    assert_eq!(e.to_string().lines().count(), e.problems.len());
    assert!(e
        .to_string()
        .lines()
        .all(|l| l.starts_with(r#"app "echo": "#)));
}

#[test]
fn invalid_json() {
    let e = err("{\"type\": \"python\",\n \"args\": }");
    assert_eq!(e.problems.len(), 1);
    assert_has(&e, "", "invalid JSON");
    assert_has(&e, "", "line 2 column");
    let e = err("");
    assert_has(
        &e,
        "",
        "invalid JSON: EOF while parsing a value at line 1 column 0",
    );
    let e = err(r#"{"a": 1} trailing"#);
    assert_has(&e, "", "trailing characters");
    let e = Manifest::parse("echo", b"{\"type\": \"\xff\"}", None).unwrap_err();
    assert_has(&e, "", "invalid JSON");
}

#[test]
fn duplicate_json_keys() {
    let e = err(&with(r#""engine": {"pool-limit": 2, "pool-limit": 3},"#));
    assert_has(
        &e,
        "",
        r#"invalid JSON: duplicate key "pool-limit" at line 1"#,
    );
}

#[test]
fn non_object_root() {
    for (json, found) in [
        ("[]", "an array"),
        ("5", "5"),
        ("null", "null"),
        (r#""x""#, r#""x""#),
    ] {
        let e = err(json);
        assert_eq!(
            e.to_string(),
            format!(r#"app "echo": the manifest must be a JSON object, found {found}"#)
        );
    }
}

#[test]
fn suicide_timeout_alias() {
    let e = engine(r#"{"idle-timeout": 10, "suicide-timeout": 20}"#);
    assert_has(
        &e,
        "engine.suicide-timeout",
        "old name of idle-timeout; give only one",
    );
    assert_eq!(e.problems.len(), 1);
    let e = engine(r#"{"suicide-timeout": 0}"#);
    assert_has(&e, "engine.suicide-timeout", "must be more than 0");
}

#[test]
fn args_must_be_local() {
    let e = err(
        r#"{"type": "python", "args": "/srv/echo", "tasks": {"t": {"type": "manual-scheduler"}}}"#,
    );
    assert_has(&e, "args", "expected a local:// URL");
    let e = err(
        r#"{"type": "python", "args": "local://", "tasks": {"t": {"type": "manual-scheduler"}}}"#,
    );
    assert_has(&e, "args", "needs a path");
    // A relative path needs the manifest's folder.
    let e = err(
        r#"{"type": "python", "args": "local://echo", "tasks": {"t": {"type": "manual-scheduler"}}}"#,
    );
    assert_has(&e, "args", "relative path \"echo\"");
    let ok = Manifest::parse(
        "echo",
        br#"{"type": "python", "args": "local://echo", "tasks": {"t": {"type": "manual-scheduler"}}}"#,
        Some(Path::new("/m")),
    );
    assert!(ok.is_ok());
}

#[test]
fn task_settings() {
    let e = err(r#"{"type": "python", "args": "local:///a",
            "tasks": {"c1": {"type": "cron", "schedule": "* * * *"},
                      "c2": {"type": "cron", "schedule": "* * * * *", "overlap": "queue"},
                      "c3": {"type": "cron", "schedule": "* * * * *", "timezone": "New York"},
                      "c4": {"type": "cron", "schedule": "0 25 * * *"},
                      "c5": {"type": "cron", "schedule": "0 0 31 feb *", "timezone": "Mars/Base"},
                      "fs": {"type": "filesystem-monitor", "path": "", "debounce": 0},
                      "r1": {"type": "raw-server", "endpoint": "tcp://*:1"},
                      "r2": {"type": "raw-server", "endpoint": "tcp://*:2", "framing": "length",
                             "max-line": 10},
                      "s": {"type": "zeromq-subscriber", "endpoint": "tcp://h:1", "subscribe": ["a", 1]},
                      "z": {"type": "zeromq-server", "endpoint": "tcp://*:3", "reply-limit": 0}}}"#);
    assert_has(&e, "tasks.c1.schedule", "5 fields");
    assert_has(&e, "tasks.c2.overlap", r#""skip", "buffer-one" or "allow""#);
    assert_has(&e, "tasks.c3.timezone", "unknown time zone \"New York\"");
    assert_has(
        &e,
        "tasks.c4.schedule",
        "hour field \"25\": 25 is out of range (0-23)",
    );
    assert_has(&e, "tasks.c5.schedule", "never fires");
    assert_has(&e, "tasks.c5.timezone", "expected an IANA name");
    assert_has(&e, "tasks.fs.path", "must not be empty");
    assert_has(&e, "tasks.fs.debounce", "must be at least 1");
    assert_has(&e, "tasks.r1", r#"missing key "framing""#);
    assert_has(&e, "tasks.r2.max-line", "only to framing \"line\"");
    assert_has(&e, "tasks.s.subscribe[1]", "expected a string, found 1");
    assert_has(&e, "tasks.z.reply-limit", "must be at least 1");
}

#[test]
fn pool_policy_object() {
    let e = engine(
        r#"{"pool-policy": {"type": "busyness", "high": 0.2, "low": 0.3, "window": 0,
                            "backoff": 0, "step": 0, "hihg": 1}}"#,
    );
    assert_has(
        &e,
        "engine.pool-policy.low",
        "low (0.3) must be less than high (0.2)",
    );
    assert_has(&e, "engine.pool-policy.window", "must be at least 1");
    assert_has(&e, "engine.pool-policy.backoff", "must be at least 1");
    assert_has(&e, "engine.pool-policy.step", "must be at least 1");
    assert_has(&e, "engine.pool-policy.hihg", r#"did you mean "high"?"#);
    let e = engine(r#"{"pool-policy": {"type": "busyness", "high": 1.5}}"#);
    assert_has(
        &e,
        "engine.pool-policy.high",
        "must be from 0 to 1, found 1.5",
    );
    let e = engine(r#"{"pool-policy": {"type": "queue", "window": 5}}"#);
    assert_has(&e, "engine.pool-policy.window", "unknown key");
    let e = engine(r#"{"pool-policy": {"window": 5}}"#);
    assert_has(&e, "engine.pool-policy", r#"missing key "type""#);
    let e = engine(r#"{"pool-policy": 3}"#);
    assert_has(&e, "engine.pool-policy", "found 3");
}

#[test]
fn max_message_must_fit_a_frame_length() {
    let json = br#"{"type": "binary", "args": "local:///bin/true",
        "engine": {"max-message": 4294967296},
        "tasks": {"t": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9999", "max-message": 5000000000}}}"#;
    let err = cocaine_core::manifest::Manifest::parse("big", json, None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("engine.max-message"), "{text}");
    assert!(text.contains("tasks.t.max-message"), "{text}");
}

#[test]
fn inline_must_be_a_boolean() {
    for (value, found) in [
        (r#""yes""#, r#""yes""#),
        ("1", "1"),
        ("null", "null"),
        ("[true]", "an array"),
    ] {
        let e = engine(&format!(r#"{{"inline": {value}}}"#));
        assert_has(
            &e,
            "engine.inline",
            &format!("expected true or false, found {found}"),
        );
    }
    // A misspelling is named, with the right key suggested.
    let e = engine(r#"{"inlined": true}"#);
    assert_has(&e, "engine.inlined", "inline");
}

#[test]
fn fork_server_must_be_a_boolean() {
    for (value, found) in [(r#""no""#, r#""no""#), ("0", "0"), ("null", "null")] {
        let e = engine(&format!(r#"{{"fork-server": {value}}}"#));
        assert_has(
            &e,
            "engine.fork-server",
            &format!("expected true or false, found {found}"),
        );
    }
    let e = engine(r#"{"forkserver": false}"#);
    assert_has(&e, "engine.forkserver", "fork-server");
}
