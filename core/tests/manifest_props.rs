//! Properties: no input panics the parser, errors are well-formed, parsing is deterministic,
//! and in-range engine settings round-trip.

use cocaine_core::engine::config::default_grow_threshold;
use cocaine_core::manifest::{Endpoint, Manifest};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Parses and checks what every outcome must satisfy.
fn check(bytes: &[u8]) {
    let first = Manifest::parse("prop", bytes, None);
    match &first {
        Ok(m) => {
            assert!(!m.tasks.is_empty());
            assert!(m.tasks.windows(2).all(|w| w[0].name < w[1].name));
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            assert_eq!(e.to_string().lines().count(), e.problems.len());
        }
    }
    assert_eq!(
        first,
        Manifest::parse("prop", bytes, None),
        "not deterministic"
    );
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys and values the parser knows, so random manifests get past the first checks and
/// reach the deeper ones.
const KEYS: &[&str] = &[
    "type",
    "args",
    "version",
    "engine",
    "pubsub",
    "tasks",
    "security",
    "cluster",
    "backend",
    "heartbeat-timeout",
    "heartbeat-interval",
    "idle-timeout",
    "suicide-timeout",
    "pool-limit",
    "pool-min",
    "queue-limit",
    "grow-threshold",
    "concurrency",
    "max-message",
    "pool-policy",
    "window",
    "high",
    "low",
    "step",
    "backoff",
    "endpoint",
    "interval",
    "immediate",
    "schedule",
    "timezone",
    "overlap",
    "path",
    "recursive",
    "debounce",
    "reply-limit",
    "subscribe",
    "framing",
    "max-line",
    "sign",
    "keys",
    "replicate",
    "spillover",
    "engine",
    "_x",
];
const WORDS: &[&str] = &[
    "python",
    "binary",
    "native",
    "process",
    "thread",
    "queue",
    "busyness",
    "local:///a",
    "local://a",
    "local://",
    "http://x",
    "recurring-timer",
    "drifting-timer",
    "cron",
    "manual-scheduler",
    "filesystem-monitor",
    "zeromq-server",
    "native-server",
    "zeromq-sink",
    "native-sink",
    "zeromq-subscriber",
    "raw-server",
    "tcp://*:1",
    "tcp://lo:1",
    "tcp://*:*",
    "tcp://[::1]:2",
    "tcp://0.0.0.0:1",
    "ipc:///x",
    "inproc://x",
    "tcp://1.2.3.999:1",
    "line",
    "length",
    "stream",
    "skip",
    "allow",
    "buffer-one",
    "* * * * *",
    "0 0 * * * *",
    "UTC",
    "",
];

fn shaped_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(WORDS).prop_map(|w| json!(w)),
        (-3i64..100).prop_map(|n| json!(n)),
        prop_oneof![
            Just(0.5),
            Just(10.0),
            Just(-0.0),
            Just(1e300),
            Just(1e-12),
            Just(2.5)
        ]
        .prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::Bool),
        Just(json!(u64::MAX)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes);
    }

    #[test]
    fn json_ish_text_never_panics(text in r#"[{}\[\]":,0-9a-z .\-eE_/*]{0,160}"#) {
        check(text.as_bytes());
    }

    #[test]
    fn arbitrary_json_never_panics(v in any_json()) {
        check(v.to_string().as_bytes());
    }

    #[test]
    fn manifest_shaped_json_never_panics(v in shaped_json(), tasks in shaped_json()) {
        let mut root = match v { Value::Object(m) => m, other => { check(other.to_string().as_bytes()); return Ok(()); } };
        root.entry("tasks").or_insert(tasks);
        check(Value::Object(root).to_string().as_bytes());
    }

    #[test]
    fn in_range_engine_settings_round_trip(
        pool_limit in 1usize..200,
        min_share in 0.0f64..=1.0,
        queue_limit in 1usize..10_000,
        timeout_ms in 2u64..100_000,
    ) {
        let pool_min = (pool_limit as f64 * min_share) as usize;
        let json = json!({
            "type": "binary", "args": "local:///bin/app",
            "engine": {"pool-limit": pool_limit, "pool-min": pool_min, "queue-limit": queue_limit,
                       "heartbeat-timeout": timeout_ms as f64 / 1000.0,
                       "heartbeat-interval": 0.001},
            "tasks": {"t": {"type": "manual-scheduler"}},
        });
        let m = Manifest::parse("p", json.to_string().as_bytes(), None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(m.engine.pool_limit, pool_limit);
        prop_assert_eq!(m.engine.pool_min, pool_min);
        prop_assert_eq!(m.engine.queue_limit, queue_limit);
        prop_assert_eq!(m.engine.grow_threshold, default_grow_threshold(queue_limit, pool_limit));
        prop_assert_eq!(m.engine.heartbeat_timeout.as_millis(), u128::from(timeout_ms));
    }

    /// The indexed clash check agrees with the pairwise rule of `Endpoint::clashes_with`.
    #[test]
    fn bind_clashes_match_the_pairwise_rule(
        eps in prop::collection::vec(prop::sample::select(&[
            "tcp://*:1", "tcp://lo:1", "tcp://127.0.0.1:1", "tcp://0.0.0.0:1", "tcp://[::]:1",
            "tcp://lo:2", "tcp://*:*", "tcp://lo:*", "ipc://a", "inproc://a", "ipc://b",
        ][..]), 1..6)
    ) {
        let tasks: Map<String, Value> = eps.iter().enumerate().map(|(i, ep)| {
            (format!("t{i}"), json!({"type": "zeromq-sink", "endpoint": ep}))
        }).collect();
        let json = json!({"type": "binary", "args": "local:///a", "tasks": tasks});
        let result = Manifest::parse("p", json.to_string().as_bytes(), None);
        let parsed: Vec<Endpoint> = eps.iter().filter_map(|e| Endpoint::parse(e).ok()).collect();
        let any_clash = parsed.iter().enumerate()
            .any(|(i, a)| parsed[i + 1..].iter().any(|b| a.clashes_with(b)));
        prop_assert_eq!(result.is_err(), any_clash, "{:?}", result.err().map(|e| e.to_string()));
    }
}
