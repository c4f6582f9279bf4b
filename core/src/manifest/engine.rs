//! The `engine` section: pool, queue, timeouts and pool policy, into [`EngineConfig`].

use super::app::AppType;
use super::error::Problems;
use super::reader::Obj;
use super::value;
use crate::engine::config::{
    default_grow_threshold, Backend, BusynessConfig, EngineConfig, PoolPolicyConfig,
};
use serde_json::Value;

const BACKENDS: &[(&str, Backend)] = &[("process", Backend::Process), ("thread", Backend::Thread)];

#[derive(Clone, Copy)]
enum PolicyKind {
    Queue,
    Busyness,
}

const POLICIES: &[(&str, PolicyKind)] = &[
    ("queue", PolicyKind::Queue),
    ("busyness", PolicyKind::Busyness),
];

/// Reads the optional `engine` section; absent keys keep [`EngineConfig::default`].
/// `app_type` is `None` when `type` itself was wrong, which skips the backend check.
pub(crate) fn parse(
    v: Option<&Value>,
    app_type: Option<AppType>,
    p: &mut Problems,
) -> EngineConfig {
    let mut c = EngineConfig::default();
    let Some(mut o) = v.and_then(|v| Obj::new(v, "engine", "an object", p)) else {
        return c;
    };

    if let Some(backend) = o.opt("backend", p, |v, path, p| {
        value::choice(v, path, BACKENDS, p)
    }) {
        c.backend = backend;
        check_backend(app_type, backend, &o.at("backend"), p);
    }

    // Timeouts are seconds, as in the 2012 manifests.
    let hb_timeout = o.secs("heartbeat-timeout", p);
    let hb_interval = o.secs("heartbeat-interval", p);
    c.heartbeat_timeout = hb_timeout.unwrap_or(c.heartbeat_timeout);
    c.heartbeat_interval = hb_interval.unwrap_or(c.heartbeat_interval);
    let idle = o.secs("idle-timeout", p);
    let suicide = o.secs("suicide-timeout", p);
    if o.has("idle-timeout") && o.has("suicide-timeout") {
        p.add(
            o.at("suicide-timeout"),
            "is the old name of idle-timeout; give only one of them",
        );
    }
    c.idle_timeout = idle.or(suicide).unwrap_or(c.idle_timeout);
    c.startup_timeout = o.secs("startup-timeout", p).unwrap_or(c.startup_timeout);
    c.termination_timeout = o
        .secs("termination-timeout", p)
        .unwrap_or(c.termination_timeout);
    c.restart_period = o.secs("restart-period", p).unwrap_or(c.restart_period);
    // `0` is allowed here and means no default timeout at all.
    if let Some(secs) = o.opt("job-timeout", p, job_timeout) {
        c.job_timeout = secs;
    }

    c.expose_errors = o.bool("expose-errors", p).unwrap_or(c.expose_errors);
    c.inline = o.bool("inline", p).or(c.inline);
    c.fork_server = o.bool("fork-server", p).unwrap_or(c.fork_server);

    let pool_limit = o.int("pool-limit", 1, p);
    let pool_min = o.int("pool-min", 0, p);
    c.pool_limit = pool_limit.unwrap_or(c.pool_limit);
    c.pool_min = pool_min.unwrap_or(c.pool_min);
    c.queue_limit = o.int("queue-limit", 1, p).unwrap_or(c.queue_limit);
    c.concurrency = o.int("concurrency", 1, p).unwrap_or(c.concurrency);
    c.restart_intensity = o
        .int("restart-intensity", 0, p)
        .unwrap_or(c.restart_intensity);
    c.max_requests = o.int("max-requests", 0, p).unwrap_or(c.max_requests);
    // Worker-channel frames carry a u32 length, so a message cannot be larger.
    c.max_message = o
        .int::<u32>("max-message", 1, p)
        .map_or(c.max_message, |v| v as usize);
    // The default follows the final limits, so `queue-limit` alone moves it too.
    c.grow_threshold = o
        .int("grow-threshold", 1, p)
        .unwrap_or_else(|| default_grow_threshold(c.queue_limit, c.pool_limit));

    if c.pool_min > c.pool_limit {
        let at = if pool_min.is_some() {
            o.at("pool-min")
        } else {
            o.at("pool-limit")
        };
        p.add(
            at,
            format!(
                "pool-min ({}) must not exceed pool-limit ({})",
                c.pool_min, c.pool_limit
            ),
        );
    }
    if c.heartbeat_interval >= c.heartbeat_timeout {
        // Blame the key that was written; with both defaults this cannot happen.
        let at = if hb_interval.is_some() {
            o.at("heartbeat-interval")
        } else {
            o.at("heartbeat-timeout")
        };
        p.add(
            at,
            format!(
                "heartbeat-interval ({:?}) must be less than heartbeat-timeout ({:?}), \
                 or every worker looks dead",
                c.heartbeat_interval, c.heartbeat_timeout
            ),
        );
    }

    let policy_path = o.at("pool-policy");
    if let Some(v) = o.get("pool-policy") {
        if let Some(policy) = pool_policy(v, &policy_path, p) {
            c.pool_policy = policy;
        }
    }
    o.finish(p);
    c
}

/// A type that cannot run on the asked backend is a clear error (docs/manifest.md): only native
/// libraries can be loaded into a thread of the node.
fn check_backend(app_type: Option<AppType>, backend: Backend, path: &str, p: &mut Problems) {
    if backend != Backend::Thread {
        return;
    }
    match app_type {
        Some(AppType::Native) | None => {}
        Some(t) => p.add(
            path,
            format!(
                "{} apps cannot run on the thread backend; use process",
                t.as_str()
            ),
        ),
    }
}

/// `"queue"`, `"busyness"`, or an object with `type` and the policy's parameters.
fn pool_policy(v: &Value, path: &str, p: &mut Problems) -> Option<PoolPolicyConfig> {
    let kind = match v {
        Value::String(_) => {
            return value::choice(v, path, POLICIES, p).map(|kind| match kind {
                PolicyKind::Queue => PoolPolicyConfig::Queue,
                PolicyKind::Busyness => PoolPolicyConfig::Busyness(BusynessConfig::default()),
            })
        }
        Value::Object(_) => {
            let mut o = Obj::new(v, path, "an object", p)?;
            let kind = o.req("type", p, |v, path, p| value::choice(v, path, POLICIES, p))?;
            (o, kind)
        }
        _ => {
            p.add(
                path,
                value::expected(r#""queue", "busyness" or an object with a "type""#, v),
            );
            return None;
        }
    };
    match kind {
        (o, PolicyKind::Queue) => {
            o.finish(p);
            Some(PoolPolicyConfig::Queue)
        }
        (o, PolicyKind::Busyness) => busyness(o, p).map(PoolPolicyConfig::Busyness),
    }
}

fn busyness(mut o: Obj<'_>, p: &mut Problems) -> Option<BusynessConfig> {
    let d = BusynessConfig::default();
    let before = p.len();
    let c = BusynessConfig {
        window: o.ms("window", p).unwrap_or(d.window),
        high: o.opt("high", p, value::fraction).unwrap_or(d.high),
        low: o.opt("low", p, value::fraction).unwrap_or(d.low),
        backoff: o.int("backoff", 1, p).unwrap_or(d.backoff),
        step: o.int("step", 1, p).unwrap_or(d.step),
    };
    // Equal thresholds would grow and shrink on the same sample.
    if c.low >= c.high {
        let at = if o.has("low") {
            o.at("low")
        } else {
            o.at("high")
        };
        p.add(
            at,
            format!("low ({}) must be less than high ({})", c.low, c.high),
        );
    }
    o.finish(p);
    (p.len() == before).then_some(c)
}

/// `job-timeout`: seconds like the other timeouts, but `0` means none.
fn job_timeout(v: &Value, path: &str, p: &mut Problems) -> Option<Option<std::time::Duration>> {
    if v.as_f64() == Some(0.0) {
        return Some(None);
    }
    value::seconds(v, path, p).map(Some)
}
