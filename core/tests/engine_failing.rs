//! Issue 13 item 2: an app whose workers never come up is reported as failing, with a
//! one-line reason; simulated workers, time moved by hand.

use std::time::{Duration, Instant};

use cocaine_core::engine::{one_line, EngineConfig, JobPolicy};
use cocaine_core::process::ExitStatus;
use cocaine_core::sim::{Behaviour, SimPool};

fn pool() -> SimPool<u32> {
    let config = EngineConfig {
        restart_intensity: 10,
        ..EngineConfig::default()
    };
    SimPool::new(Instant::now(), config, &["event"], Behaviour::MANUAL)
}

const TRACEBACK: &[&str] = &[
    "Traceback (most recent call last):",
    "  File \"/srv/apps/broken/app.py\", line 1, in <module>",
    "ModuleNotFoundError: No module named 'missing'",
];

#[test]
fn an_app_whose_first_worker_dies_before_its_handshake_is_failing() {
    let mut p = pool();
    assert_eq!(p.engine.failing(), None, "nothing tried yet");
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    for line in TRACEBACK {
        p.engine.worker_stderr(w, line);
    }
    p.exit(w, ExitStatus::Code(1));
    let reason = p.engine.failing().expect("failing after a start failure");
    assert!(!reason.contains('\n'), "{reason}");
    assert!(reason.starts_with(&format!("worker {w} failed: exited before its handshake")));
    assert!(
        reason.ends_with("ModuleNotFoundError: No module named 'missing'"),
        "{reason}"
    );
    // Not broken by the crash-loop rule yet: the engine still runs and retries.
    assert_eq!(p.engine.state().name(), "running");
}

#[test]
fn once_a_worker_came_up_a_later_failure_is_not_failing() {
    let mut p = pool();
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.handshake(w);
    p.advance(Duration::from_millis(1));
    p.exit(w, ExitStatus::Code(1));
    assert_eq!(p.engine.failing(), None);
}

#[test]
fn one_line_keeps_the_first_and_the_last_line() {
    assert_eq!(one_line(""), "");
    assert_eq!(one_line("just this"), "just this");
    assert_eq!(one_line("a\n\n  b  \nc\n\n"), "a: c");
    assert_eq!(one_line("\n\nonly\n"), "only");
}

#[test]
fn a_repeated_failure_is_logged_in_full_once_then_in_one_line() {
    let mut p = pool();
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    for _ in 0..3 {
        let w = *p.spawned.last().unwrap();
        for line in TRACEBACK {
            p.engine.worker_stderr(w, line);
        }
        p.exit(w, ExitStatus::Code(1));
        p.advance(Duration::from_millis(10));
    }
    let failures: Vec<&str> = p
        .logs
        .iter()
        .filter(|(_, m)| m.contains("failed: exited before its handshake"))
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures[0].contains("Traceback"), "{failures:?}");
    for repeat in &failures[1..] {
        assert!(
            !repeat.contains('\n') && repeat.ends_with("(repeated)"),
            "{repeat}"
        );
        assert!(repeat.contains("ModuleNotFoundError"), "{repeat}");
    }
}
