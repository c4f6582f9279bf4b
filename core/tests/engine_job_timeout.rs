//! The default job timeout (`job-timeout`), its log lines, and worker counts that add up.
//! Simulated workers, time moved by hand.

use std::time::{Duration, Instant};

use cocaine_core::engine::config::DEFAULT_JOB_TIMEOUT;
use cocaine_core::engine::{EngineConfig, JobPolicy, ReplyEvent};
use cocaine_core::manifest::Manifest;
use cocaine_core::process::{LogLevel, Signal};
use cocaine_core::sim::{Behaviour, SimPool};

/// Workers that handshake and heartbeat but never answer a job: a hung handler.
const HUNG: Behaviour = Behaviour {
    echo: false,
    obey: false,
    ..Behaviour::ECHO
};

fn pool(config: EngineConfig) -> SimPool<u32> {
    SimPool::new(Instant::now(), config, &["event"], HUNG)
}

fn error_of(p: &SimPool<u32>, token: u32) -> Option<(u32, String)> {
    p.replies_for(&token).into_iter().find_map(|e| match e {
        ReplyEvent::Error(f) => Some((f.code, f.message)),
        _ => None,
    })
}

fn warnings(p: &SimPool<u32>) -> Vec<&str> {
    p.logs
        .iter()
        .filter(|(level, _)| *level == LogLevel::Warn)
        .map(|(_, m)| m.as_str())
        .collect()
}

#[test]
fn a_hung_job_without_a_timeout_of_its_own_gets_504_at_the_default_and_is_logged() {
    let mut p = pool(EngineConfig::default());
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.advance(DEFAULT_JOB_TIMEOUT - Duration::from_millis(1));
    assert_eq!(error_of(&p, 1), None);
    assert!(warnings(&p).is_empty(), "{:?}", p.logs);

    p.advance(Duration::from_millis(1));
    let (code, message) = error_of(&p, 1).expect("a 504 at the default timeout");
    assert_eq!(code, 504);
    assert_eq!(message, "timed out after 20000 ms");
    let logged = warnings(&p);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(&format!("sim/{w}")), "{logged:?}");
    assert!(
        logged[0].contains("(event) timed out after 20000 ms"),
        "{logged:?}"
    );
    assert_eq!(
        p.engine.info().workers.busy,
        1,
        "the cancelled job still holds its slot"
    );

    // The worker never lets go: after termination-timeout it is killed, and that is logged.
    p.advance(EngineConfig::default().termination_timeout);
    assert_eq!(p.workers[&w].signals, [Signal::Kill], "{:?}", p.workers[&w]);
    let logged = warnings(&p);
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(
        logged[1].contains("did not let go of cancelled job"),
        "{logged:?}"
    );
    assert!(logged[1].contains("killing it"), "{logged:?}");
}

#[test]
fn the_request_timeout_wins_over_the_default() {
    let mut p = pool(EngineConfig::default());
    let policy = JobPolicy {
        timeout: Some(Duration::from_secs(60)),
        ..JobPolicy::default()
    };
    p.submit(1, b"x", policy).unwrap();
    p.advance(Duration::from_secs(59));
    assert_eq!(error_of(&p, 1), None);
    p.advance(Duration::from_secs(1));
    assert_eq!(error_of(&p, 1).map(|e| e.0), Some(504));
}

#[test]
fn no_default_timeout_lets_a_job_run_for_ever() {
    let mut p = pool(EngineConfig {
        job_timeout: None,
        ..EngineConfig::default()
    });
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    p.advance(Duration::from_secs(3600));
    assert_eq!(error_of(&p, 1), None);
    assert!(warnings(&p).is_empty(), "{:?}", p.logs);
    assert_eq!(p.engine.info().jobs.running, 1);
}

#[test]
fn worker_counts_add_up() {
    let config = EngineConfig {
        pool_min: 3,
        ..EngineConfig::default()
    };
    let mut p = pool(config);
    p.advance(Duration::from_millis(1));
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.engine.info().workers;
    assert_eq!((w.ready, w.idle, w.busy, w.total), (3, 2, 1, 3), "{w:?}");
    assert_eq!(w.idle + w.busy, w.ready);
    assert_eq!(w.starting + w.ready + w.draining, w.total);
}

fn parse_engine(engine: &str) -> Result<Manifest, String> {
    let json = format!(
        r#"{{"type": "python", "args": "local:///srv/a.py", "engine": {engine},
            "tasks": {{"e": {{"type": "native-server", "endpoint": "tcp://127.0.0.1:9000"}}}}}}"#
    );
    Manifest::parse("a", json.as_bytes(), None).map_err(|e| e.to_string())
}

#[test]
fn job_timeout_in_the_manifest() {
    let m = parse_engine("{}").unwrap();
    assert_eq!(m.engine.job_timeout, Some(DEFAULT_JOB_TIMEOUT));
    let m = parse_engine(r#"{"job-timeout": 0}"#).unwrap();
    assert_eq!(m.engine.job_timeout, None);
    let m = parse_engine(r#"{"job-timeout": 2.5}"#).unwrap();
    assert_eq!(m.engine.job_timeout, Some(Duration::from_millis(2500)));
    for bad in [r#""10""#, "-1", "null", "1e300", "[]"] {
        let e = parse_engine(&format!(r#"{{"job-timeout": {bad}}}"#)).unwrap_err();
        assert!(e.contains("engine.job-timeout"), "{bad}: {e}");
    }
}
