//! Issue 13 item 2: an app whose workers never come up is reported as failing, with a
//! one-line reason; simulated workers, time moved by hand.

use std::time::{Duration, Instant};

use cocaine_core::engine::{one_line, EngineConfig, JobPolicy, ReplyEvent, REPEAT_BURST};
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

/// A pool whose workers die before their handshake with a traceback, until it breaks.
fn crash_loop(expose_errors: bool) -> SimPool<u32> {
    let config = EngineConfig {
        restart_intensity: 1,
        expose_errors,
        ..EngineConfig::default()
    };
    let mut p = SimPool::new(Instant::now(), config, &["event"], Behaviour::MANUAL);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    for _ in 0..2 {
        let w = *p.spawned.last().unwrap();
        for line in TRACEBACK {
            p.engine.worker_stderr(w, line);
        }
        p.exit(w, ExitStatus::Code(1));
        p.advance(Duration::from_millis(10));
    }
    assert_eq!(p.engine.state().name(), "broken");
    p
}

fn error_of(p: &SimPool<u32>, tag: u32) -> String {
    match p.replies_for(&tag).last() {
        Some(ReplyEvent::Error(f)) => f.message.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn callers_get_a_short_message_without_paths_or_tracebacks_by_default() {
    let mut p = crash_loop(false);
    let queued = error_of(&p, 1);
    let refused = p.submit(2, b"x", JobPolicy::default()).unwrap_err().message;
    for message in [&queued, &refused] {
        assert!(message.starts_with("app is broken: worker "), "{message}");
        assert!(
            message.contains("exited before its handshake (exit code 1)"),
            "{message}"
        );
        for leak in ["Traceback", "/srv/apps", "ModuleNotFoundError", "\n"] {
            assert!(!message.contains(leak), "{leak:?} in {message}");
        }
    }
    // The operator still sees everything: the log and `info`.
    assert!(p.logs.iter().any(|(_, m)| m.contains("Traceback")));
    let info = p.engine.info();
    assert!(info.reason.unwrap().contains("ModuleNotFoundError"));
}

#[test]
fn expose_errors_gives_callers_the_whole_report() {
    let mut p = crash_loop(true);
    let queued = error_of(&p, 1);
    let refused = p.submit(2, b"x", JobPolicy::default()).unwrap_err().message;
    for message in [&queued, &refused] {
        assert!(message.contains("Traceback"), "{message}");
        assert!(message.contains("ModuleNotFoundError"), "{message}");
    }
}

#[test]
fn stderr_of_a_starting_worker_is_logged_in_its_report_or_at_its_hello() {
    let mut p = pool();
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.engine.worker_stderr(w, "loading the model");
    p.advance(Duration::ZERO);
    assert!(
        !p.logs.iter().any(|(_, m)| m.contains("loading the model")),
        "held until the handshake"
    );
    p.handshake(w);
    let shown: Vec<_> = p
        .logs
        .iter()
        .filter(|(_, m)| m.ends_with(": loading the model"))
        .collect();
    assert_eq!(shown.len(), 1, "{:?}", p.logs);
    assert!(shown[0].1.contains(&format!("/{w}: ")), "{shown:?}");
    p.engine.worker_stderr(w, "serving");
    p.advance(Duration::ZERO);
    assert!(p.logs.iter().any(|(_, m)| m.ends_with(": serving")));
}

#[test]
fn a_crash_loop_logs_at_most_a_burst_of_repeats() {
    let mut p = pool();
    let config_failures = REPEAT_BURST as usize + 4;
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    for _ in 0..config_failures {
        let w = *p.spawned.last().unwrap();
        for line in TRACEBACK {
            p.engine.worker_stderr(w, line);
        }
        p.exit(w, ExitStatus::Code(1));
        p.advance(Duration::from_millis(10));
    }
    let failures = p
        .logs
        .iter()
        .filter(|(_, m)| m.contains("failed: exited before its handshake"))
        .count();
    // Whole once, then the burst; and no traceback line logged on its own.
    assert_eq!(failures, 1 + REPEAT_BURST as usize, "{:?}", p.logs);
    let tracebacks = p
        .logs
        .iter()
        .filter(|(_, m)| m.contains("Traceback"))
        .count();
    assert_eq!(tracebacks, 1, "{:?}", p.logs);
}
