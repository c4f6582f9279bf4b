//! Manifests that must parse, with every value and default checked.

use cocaine_core::engine::config::{
    default_grow_threshold, Backend, BusynessConfig, EngineConfig, PoolPolicyConfig,
    DEFAULT_JOB_TIMEOUT, DEFAULT_MAX_MESSAGE,
};
use cocaine_core::manifest::{
    AppType, Framing, Manifest, Overlap, TaskKind, DEFAULT_MAX_LINE, DEFAULT_REPLY_LIMIT,
    TASK_TYPES,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn parse(json: &str) -> Manifest {
    Manifest::parse("example", json.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"))
}

/// The manifest of the 2012 README, path changed.
const README: &str = r#"{"type": "python", "args": "local:///srv/apps/example/app.py", "version": 1,
 "engine": {"backend": "process", "heartbeat-timeout": 60, "pool-limit": 20, "queue-limit": 5},
 "pubsub": {"endpoint": "tcp://lo:9200"},
 "tasks": {"aggregate": {"type": "recurring-timer", "interval": 60000},
           "event": {"type": "native-server", "endpoint": "tcp://lo:9100"},
           "spool": {"type": "filesystem-monitor", "path": "/var/spool/my-app-data"}}}"#;

#[test]
fn readme_manifest_2012() {
    let m = parse(README);
    assert_eq!(m.app, "example");
    assert_eq!(m.app_type, AppType::Python);
    assert_eq!(m.args.raw, "local:///srv/apps/example/app.py");
    assert_eq!(m.args.path, PathBuf::from("/srv/apps/example/app.py"));
    assert_eq!(m.version, 1);

    let expected_engine = EngineConfig {
        backend: Backend::Process,
        heartbeat_timeout: Duration::from_secs(60),
        heartbeat_interval: Duration::from_secs(5),
        pool_limit: 20,
        pool_min: 0,
        queue_limit: 5,
        grow_threshold: 1,
        concurrency: 1,
        idle_timeout: Duration::from_secs(600),
        startup_timeout: Duration::from_secs(10),
        termination_timeout: Duration::from_secs(5),
        restart_intensity: 5,
        restart_period: Duration::from_secs(10),
        max_requests: 0,
        pool_policy: PoolPolicyConfig::Queue,
        max_message: DEFAULT_MAX_MESSAGE,
        job_timeout: Some(DEFAULT_JOB_TIMEOUT),
        expose_errors: false,
        inline: None,
        fork_server: false,
    };
    assert_eq!(m.engine, expected_engine);
    assert_eq!(m.engine.grow_threshold, default_grow_threshold(5, 20));

    let pubsub = m.pubsub.as_ref().expect("pubsub");
    assert_eq!(pubsub.endpoint, "tcp://lo:9200");
    assert_eq!(pubsub.interval, Duration::from_millis(1000));
    assert_eq!(m.security, None);
    assert_eq!(m.cluster, None);

    let names: Vec<&str> = m.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["aggregate", "event", "spool"]);
    assert_eq!(
        m.task("aggregate").map(|t| &t.kind),
        Some(&TaskKind::RecurringTimer {
            interval: Duration::from_secs(60),
            immediate: false
        })
    );
    assert_eq!(
        m.task("event").map(|t| &t.kind),
        Some(&TaskKind::NativeServer {
            endpoint: "tcp://lo:9100".into(),
            max_message: DEFAULT_MAX_MESSAGE,
            security: None,
        })
    );
    assert_eq!(
        m.task("spool").map(|t| &t.kind),
        Some(&TaskKind::FilesystemMonitor {
            path: PathBuf::from("/var/spool/my-app-data"),
            recursive: false,
            debounce: Duration::from_millis(100),
        })
    );
    assert!(m.task("nope").is_none());
}

#[test]
fn minimal_manifest_gets_every_default() {
    let m = parse(
        r#"{"type": "binary", "args": "local:///bin/echo",
            "tasks": {"t": {"type": "manual-scheduler"}}}"#,
    );
    assert_eq!(m.version, 0);
    assert_eq!(m.engine, EngineConfig::default());
    assert_eq!(m.pubsub, None);
    assert_eq!(m.tasks.len(), 1);
    assert_eq!(m.tasks[0].kind, TaskKind::ManualScheduler);
}

const ALL_TASKS: &str = r#"{
  "type": "native", "args": "local:///srv/apps/all/libapp.so",
  "engine": {"backend": "thread", "max-message": 1000},
  "pubsub": {"endpoint": "tcp://127.0.0.1:9200", "interval": 250},
  "tasks": {
    "tick": {"type": "recurring-timer", "interval": 500, "immediate": true},
    "drift": {"type": "drifting-timer", "interval": 750},
    "nightly": {"type": "cron", "schedule": "0 30 2 * * *", "timezone": "Europe/Moscow",
                "overlap": "buffer-one"},
    "later": {"type": "manual-scheduler"},
    "watch": {"type": "filesystem-monitor", "path": "/tmp/in", "recursive": true,
              "debounce": 20},
    "req": {"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:9101", "reply-limit": 4096},
    "call": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9102", "max-message": 2000},
    "push": {"type": "zeromq-sink", "endpoint": "ipc:///tmp/all-push.sock"},
    "npush": {"type": "native-sink", "endpoint": "inproc://npush"},
    "sub": {"type": "zeromq-subscriber", "endpoint": "tcp://127.0.0.1:9200",
            "subscribe": ["all:tick", "all:drift "]},
    "raw": {"type": "raw-server", "endpoint": "tcp://*:9103", "framing": "line",
            "max-line": 100},
    "web": {"type": "http-server", "endpoint": "tcp://127.0.0.1:9104",
            "routes": {"/api": "api"}, "header-timeout": 500}
  }
}"#;

#[test]
fn all_eleven_task_types() {
    let m = parse(ALL_TASKS);
    assert_eq!(m.app_type, AppType::Native);
    assert_eq!(m.engine.backend, Backend::Thread);
    assert_eq!(
        m.pubsub.as_ref().map(|p| p.interval),
        Some(Duration::from_millis(250))
    );
    let mut types: Vec<&str> = m.tasks.iter().map(|t| t.kind.type_name()).collect();
    types.sort_unstable();
    let mut all = TASK_TYPES.to_vec();
    all.sort_unstable();
    assert_eq!(types, all);

    let kind = |name: &str| m.task(name).map(|t| t.kind.clone()).expect(name);
    assert_eq!(
        kind("tick"),
        TaskKind::RecurringTimer {
            interval: Duration::from_millis(500),
            immediate: true
        }
    );
    assert_eq!(
        kind("drift"),
        TaskKind::DriftingTimer {
            interval: Duration::from_millis(750)
        }
    );
    assert_eq!(
        kind("nightly"),
        TaskKind::Cron {
            schedule: "0 30 2 * * *".into(),
            timezone: "Europe/Moscow".into(),
            overlap: Overlap::BufferOne
        }
    );
    assert_eq!(kind("later"), TaskKind::ManualScheduler);
    assert_eq!(
        kind("watch"),
        TaskKind::FilesystemMonitor {
            path: "/tmp/in".into(),
            recursive: true,
            debounce: Duration::from_millis(20)
        }
    );
    // Per-task max-message defaults to the engine's.
    assert_eq!(
        kind("req"),
        TaskKind::ZeromqServer {
            endpoint: "tcp://127.0.0.1:9101".into(),
            reply_limit: 4096,
            max_message: 1000
        }
    );
    assert_eq!(
        kind("call"),
        TaskKind::NativeServer {
            endpoint: "tcp://127.0.0.1:9102".into(),
            max_message: 2000,
            security: None,
        }
    );
    assert_eq!(
        kind("push"),
        TaskKind::ZeromqSink {
            endpoint: "ipc:///tmp/all-push.sock".into(),
            max_message: 1000
        }
    );
    assert_eq!(
        kind("npush"),
        TaskKind::NativeSink {
            endpoint: "inproc://npush".into(),
            max_message: 1000,
            security: None,
        }
    );
    // A subscriber connects, so it may name the pubsub endpoint of this very app.
    assert_eq!(
        kind("sub"),
        TaskKind::ZeromqSubscriber {
            endpoint: "tcp://127.0.0.1:9200".into(),
            subscribe: vec!["all:tick".into(), "all:drift ".into()],
            max_message: 1000
        }
    );
    assert_eq!(
        kind("raw"),
        TaskKind::RawServer {
            endpoint: "tcp://*:9103".into(),
            framing: Framing::Line,
            max_line: 100,
            max_message: 1000
        }
    );
    // A type known only to its driver: its settings with defaults filled in (max-body is
    // the engine's max-message).
    assert_eq!(
        serde_json::to_value(kind("web")).unwrap(),
        serde_json::json!({"type": "http-server", "endpoint": "tcp://127.0.0.1:9104",
                           "routes": {"/api": "api"}, "max-header": 65536, "max-body": 1000,
                           "header-timeout": 500})
    );
}

#[test]
fn task_defaults() {
    let m = parse(
        r#"{"type": "python", "args": "local:///a",
            "tasks": {"c": {"type": "cron", "schedule": "*/5 * * * *"},
                      "z": {"type": "zeromq-server", "endpoint": "tcp://*:1"},
                      "r": {"type": "raw-server", "endpoint": "tcp://*:2", "framing": "length"},
                      "s": {"type": "zeromq-subscriber", "endpoint": "tcp://h:3"}}}"#,
    );
    assert_eq!(
        m.task("c").map(|t| &t.kind),
        Some(&TaskKind::Cron {
            schedule: "*/5 * * * *".into(),
            timezone: "UTC".into(),
            overlap: Overlap::Skip
        })
    );
    assert_eq!(
        m.task("z").map(|t| &t.kind),
        Some(&TaskKind::ZeromqServer {
            endpoint: "tcp://*:1".into(),
            reply_limit: DEFAULT_REPLY_LIMIT,
            max_message: DEFAULT_MAX_MESSAGE
        })
    );
    assert_eq!(
        m.task("r").map(|t| &t.kind),
        Some(&TaskKind::RawServer {
            endpoint: "tcp://*:2".into(),
            framing: Framing::Length,
            max_line: DEFAULT_MAX_LINE,
            max_message: DEFAULT_MAX_MESSAGE
        })
    );
    assert_eq!(
        m.task("s").map(|t| &t.kind),
        Some(&TaskKind::ZeromqSubscriber {
            endpoint: "tcp://h:3".into(),
            subscribe: vec![],
            max_message: DEFAULT_MAX_MESSAGE
        })
    );
}

#[test]
fn every_engine_key() {
    let m = parse(
        r#"{"type": "native", "args": "local:///lib.so", "tasks": {"t": {"type": "manual-scheduler"}},
            "engine": {"backend": "thread", "heartbeat-timeout": 2.5, "heartbeat-interval": 0.5,
              "idle-timeout": 30, "startup-timeout": 1, "termination-timeout": 0.25,
              "restart-period": 60, "pool-limit": 8, "pool-min": 2, "queue-limit": 1000,
              "grow-threshold": 3, "concurrency": 4, "restart-intensity": 0,
              "max-requests": 10000, "max-message": 65536, "inline": true,
              "pool-policy": {"type": "busyness", "window": 2000, "high": 0.75, "low": 0.1,
                              "backoff": 5, "step": 2}}}"#,
    );
    let e = &m.engine;
    assert_eq!(e.heartbeat_timeout, Duration::from_millis(2500));
    assert_eq!(e.heartbeat_interval, Duration::from_millis(500));
    assert_eq!(e.idle_timeout, Duration::from_secs(30));
    assert_eq!(e.startup_timeout, Duration::from_secs(1));
    assert_eq!(e.termination_timeout, Duration::from_millis(250));
    assert_eq!(e.restart_period, Duration::from_secs(60));
    assert_eq!((e.pool_limit, e.pool_min, e.queue_limit), (8, 2, 1000));
    assert_eq!((e.grow_threshold, e.concurrency), (3, 4));
    assert_eq!(
        (e.restart_intensity, e.max_requests, e.max_message),
        (0, 10000, 65536)
    );
    assert_eq!(e.inline, Some(true));
    assert_eq!(
        e.pool_policy,
        PoolPolicyConfig::Busyness(BusynessConfig {
            window: Duration::from_secs(2),
            high: 0.75,
            low: 0.1,
            backoff: 5,
            step: 2
        })
    );
}

#[test]
fn engine_variants() {
    let with_engine = |engine: &str| {
        parse(&format!(
            r#"{{"type": "python", "args": "local:///a", "engine": {engine},
                "tasks": {{"t": {{"type": "manual-scheduler"}}}}}}"#
        ))
        .engine
    };
    // The old name of idle-timeout still works.
    assert_eq!(
        with_engine(r#"{"suicide-timeout": 42}"#).idle_timeout,
        Duration::from_secs(42)
    );
    // The grow-threshold default follows the final limits.
    assert_eq!(
        with_engine(r#"{"queue-limit": 45, "pool-limit": 4}"#).grow_threshold,
        12
    );
    assert_eq!(with_engine(r#"{"queue-limit": 45}"#).grow_threshold, 5);
    // 10.0 is an integer; 1e2 too.
    assert_eq!(
        with_engine(r#"{"pool-limit": 10.0, "queue-limit": 1e2}"#).pool_limit,
        10
    );
    assert_eq!(
        with_engine(r#"{"pool-policy": "busyness"}"#).pool_policy,
        PoolPolicyConfig::Busyness(BusynessConfig::default())
    );
    assert_eq!(
        with_engine(r#"{"pool-policy": "queue"}"#).pool_policy,
        PoolPolicyConfig::Queue
    );
    assert_eq!(
        with_engine(r#"{"pool-policy": {"type": "queue"}}"#).pool_policy,
        PoolPolicyConfig::Queue
    );
    assert_eq!(with_engine("{}"), EngineConfig::default());
}

#[test]
fn security_and_cluster() {
    let m = Manifest::parse(
        "s",
        br#"{"type": "python", "args": "local://app", "tasks": {"t": {"type": "manual-scheduler"}},
            "security": {"sign": true, "window": 2.5, "keys": "keys"},
            "cluster": {"replicate": true}}"#,
        Some(Path::new("/srv/apps/s")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = m.security.expect("security");
    assert!(s.sign);
    assert_eq!(s.window, Duration::from_millis(2500));
    assert_eq!(s.keys, Some(PathBuf::from("/srv/apps/s/keys")));
    let c = m.cluster.expect("cluster");
    assert!(c.replicate);
    assert!(!c.spillover);

    let m = parse(
        r#"{"type": "python", "args": "local:///a", "tasks": {"t": {"type": "manual-scheduler"}},
            "security": {}, "cluster": {}}"#,
    );
    let s = m.security.expect("security");
    assert_eq!(
        (s.sign, s.window, s.keys),
        (false, Duration::from_secs(30), None)
    );
    assert_eq!(
        m.cluster.map(|c| (c.replicate, c.spillover)),
        Some((false, false))
    );
}

#[test]
fn relative_paths_resolve_against_the_manifest_folder() {
    let base = Path::new("/srv/manifests");
    let m = |args: &str| {
        Manifest::parse(
            "rel",
            format!(
                r#"{{"type": "python", "args": "{args}",
                    "tasks": {{"w": {{"type": "filesystem-monitor", "path": "../spool"}}}}}}"#
            )
            .as_bytes(),
            Some(base),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(
        m("local://apps/echo.py").args.path,
        PathBuf::from("/srv/manifests/apps/echo.py")
    );
    assert_eq!(
        m("local://./echo.py").args.path,
        PathBuf::from("/srv/manifests/echo.py")
    );
    assert_eq!(
        m("local:///abs/echo.py").args.path,
        PathBuf::from("/abs/echo.py")
    );
    assert_eq!(
        m("local://./echo.py").task("w").map(|t| t.kind.clone()),
        Some(TaskKind::FilesystemMonitor {
            path: "/srv/spool".into(),
            recursive: false,
            debounce: Duration::from_millis(100)
        })
    );
}

#[test]
fn endpoints_that_do_not_clash() {
    // Different ports, `*` ports, a subscriber on a bound endpoint, different transports.
    parse(
        r#"{"type": "python", "args": "local:///a",
            "pubsub": {"endpoint": "tcp://*:*"},
            "tasks": {"a": {"type": "native-server", "endpoint": "tcp://*:*"},
                      "b": {"type": "native-server", "endpoint": "tcp://lo:1"},
                      "c": {"type": "native-server", "endpoint": "tcp://lo:2"},
                      "d": {"type": "zeromq-subscriber", "endpoint": "tcp://lo:1"},
                      "e": {"type": "zeromq-sink", "endpoint": "ipc://x"},
                      "f": {"type": "zeromq-sink", "endpoint": "inproc://x"},
                      "g": {"type": "zeromq-sink", "endpoint": "tcp://[::1]:1"}}}"#,
    );
}

#[test]
fn parsing_is_deterministic() {
    let a = parse(ALL_TASKS);
    let b = parse(ALL_TASKS);
    assert_eq!(a, b);
    let names: Vec<&str> = a.tasks.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
}

#[test]
fn script_language_app_types() {
    for (spelling, app_type) in [("javascript", AppType::Javascript), ("perl", AppType::Perl)] {
        let m = parse(&format!(
            r#"{{"type": "{spelling}", "args": "local:///srv/apps/echo",
                "tasks": {{"echo": {{"type": "native-server", "endpoint": "tcp://127.0.0.1:9100"}}}}}}"#
        ));
        assert_eq!(m.app_type, app_type);
        assert_eq!(app_type.as_str(), spelling);
    }
}

#[test]
fn engine_inline_is_read_as_written_and_absent_by_default() {
    let with_inline = |v: &str| {
        parse(&format!(
            r#"{{"type": "python", "args": "local:///srv/app.py", "engine": {{"inline": {v}}},
                "tasks": {{"e": {{"type": "native-server", "endpoint": "tcp://*:9100"}}}}}}"#
        ))
        .engine
        .inline
    };
    assert_eq!(with_inline("true"), Some(true));
    assert_eq!(with_inline("false"), Some(false));
    assert_eq!(parse(README).engine.inline, None);
}

#[test]
fn engine_fork_server_is_off_unless_the_manifest_says_true() {
    let with = |engine: &str| {
        parse(&format!(
            r#"{{"type": "python", "args": "local:///srv/app.py", "engine": {engine},
                "tasks": {{"e": {{"type": "native-server", "endpoint": "tcp://*:9100"}}}}}}"#
        ))
        .engine
        .fork_server
    };
    assert!(with(r#"{"fork-server": true}"#));
    assert!(!with(r#"{"fork-server": false}"#));
    assert!(!with("{}"));
    assert!(!parse(README).engine.fork_server);
}
