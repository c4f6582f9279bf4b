//! Every engine rule of docs/engine.md, with simulated workers and time moved by hand.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::engine::{
    AppState, EngineConfig, EngineEvent, JobPolicy, JobRequest, PoolPolicyConfig, ReplyEvent,
    ReplyMode, WorkerState,
};
use cocaine_core::process::{ExitStatus, Signal};
use cocaine_core::sim::{Behaviour, SimPool};
use cocaine_core::status::Failure;

fn config() -> EngineConfig {
    EngineConfig {
        pool_limit: 2,
        queue_limit: 3,
        grow_threshold: 1,
        heartbeat_interval: Duration::from_secs(5),
        heartbeat_timeout: Duration::from_secs(30),
        startup_timeout: Duration::from_secs(10),
        termination_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(600),
        ..EngineConfig::default()
    }
}

fn pool(config: EngineConfig, behaviour: Behaviour) -> SimPool<u32> {
    SimPool::new(Instant::now(), config, &["event"], behaviour)
}

fn error_code(events: &[ReplyEvent]) -> Option<u32> {
    events.iter().find_map(|e| match e {
        ReplyEvent::Error(f) => Some(f.code),
        _ => None,
    })
}

fn terminal_count(events: &[ReplyEvent]) -> usize {
    events.iter().filter(|e| e.is_terminal()).count()
}

fn policy(timeout_ms: Option<u64>, deadline_ms: Option<u64>) -> JobPolicy {
    JobPolicy {
        urgent: false,
        timeout: timeout_ms.map(Duration::from_millis),
        deadline: deadline_ms.map(Duration::from_millis),
    }
}

#[test]
fn echo_round_trip() {
    let mut p = pool(config(), Behaviour::ECHO);
    p.submit(1, b"hello", JobPolicy::default()).unwrap();
    assert_eq!(
        p.replies_for(&1),
        vec![
            ReplyEvent::Chunk(Bytes::from_static(b"hello")),
            ReplyEvent::End
        ]
    );
    let info = p.engine.info();
    assert_eq!(info.tasks["event"].completed, 1);
    assert_eq!(info.workers.ready, 1);
}

#[test]
fn admission_is_strict_and_counts_waiting_jobs_only() {
    let mut cfg = config();
    cfg.pool_limit = 1;
    let mut p = pool(
        cfg,
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    // One job runs on the only worker; three wait; the fifth is refused at once.
    for tag in 1..=4 {
        p.submit(tag, b"x", JobPolicy::default()).unwrap();
    }
    assert_eq!(p.engine.queued(), 3);
    let refused = p.submit(5, b"x", JobPolicy::default()).unwrap_err();
    assert_eq!(refused, Failure::new(503, "queue is full"));
    assert!(
        p.replies_for(&5).is_empty(),
        "a refused job gets no reply event"
    );
    assert_eq!(p.engine.info().tasks["event"].rejected, 1);
}

#[test]
fn urgent_jobs_jump_the_queue() {
    let mut cfg = config();
    cfg.pool_limit = 1;
    let mut p = pool(cfg, Behaviour::MANUAL);
    p.submit(1, b"first", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.handshake(w);
    p.submit(2, b"normal", JobPolicy::default()).unwrap();
    p.submit(
        3,
        b"urgent",
        JobPolicy {
            urgent: true,
            ..JobPolicy::default()
        },
    )
    .unwrap();
    let first = p.running_on(w)[0];
    p.send(w, &WorkerMessage::Choke { sid: first });
    let next = p.workers[&w].jobs.values().next().unwrap().chunks.clone();
    assert_eq!(next, vec![Bytes::from_static(b"urgent")]);
}

#[test]
fn dispatch_picks_the_least_loaded_worker_and_honours_concurrency() {
    let mut cfg = config();
    cfg.pool_limit = 2;
    cfg.pool_min = 2;
    cfg.concurrency = 2;
    let mut p = pool(
        cfg,
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    let (a, b) = (p.spawned[0], p.spawned[1]);
    for tag in 1..=4 {
        p.submit(tag, b"x", JobPolicy::default()).unwrap();
    }
    assert_eq!(p.running_on(a).len(), 2);
    assert_eq!(p.running_on(b).len(), 2);
    // Both full: the next waits.
    p.submit(5, b"x", JobPolicy::default()).unwrap();
    assert_eq!(p.engine.queued(), 1);
    // b frees a slot: the waiting job goes there, not to a.
    let sid = p.running_on(b)[0];
    p.send(b, &WorkerMessage::Choke { sid });
    assert_eq!(p.running_on(b).len(), 2);
    assert_eq!(p.running_on(a).len(), 2);
    assert_eq!(p.engine.queued(), 0);
}

#[test]
fn timeout_gives_504_then_cancel_then_kill() {
    let mut p = pool(
        config(),
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", policy(Some(1000), None)).unwrap();
    let w = p.spawned[0];
    let sid = p.running_on(w)[0];
    p.advance(Duration::from_millis(999));
    assert!(p.replies_for(&1).is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(error_code(&p.replies_for(&1)), Some(504));
    assert!(p.workers[&w]
        .received
        .contains(&WorkerMessage::Cancel { sid }));
    // The worker ignores the cancel: killed after termination-timeout, no second reply.
    p.advance(Duration::from_secs(5));
    assert!(!p.workers.contains_key(&w), "killed and reaped");
    assert_eq!(terminal_count(&p.replies_for(&1)), 1);
    // Not a crash: the app is still running and serves the next job.
    assert_eq!(p.engine.state(), &AppState::Running);
}

#[test]
fn a_worker_that_answers_its_cancel_is_kept() {
    let mut p = pool(config(), Behaviour::MANUAL);
    p.submit(1, b"x", policy(Some(100), None)).unwrap();
    let w = p.spawned[0];
    p.handshake(w);
    let sid = p.running_on(w)[0];
    p.advance(Duration::from_millis(100));
    p.send(
        w,
        &WorkerMessage::Error {
            sid,
            code: 499,
            message: "cancelled".into(),
        },
    );
    p.advance(Duration::from_secs(10));
    assert!(p.workers[&w].signals.is_empty());
    assert_eq!(
        p.replies_for(&1).len(),
        1,
        "the late error is not forwarded"
    );
    p.submit(2, b"y", JobPolicy::default()).unwrap();
    assert_eq!(p.running_on(w).len(), 1, "the slot was freed");
}

#[test]
fn a_deadline_passing_in_the_queue_means_520_and_never_runs() {
    let mut cfg = config();
    cfg.pool_limit = 1;
    let mut p = pool(
        cfg,
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"busy", JobPolicy::default()).unwrap();
    p.submit(2, b"late", policy(None, Some(500))).unwrap();
    p.advance(Duration::from_millis(500));
    assert_eq!(error_code(&p.replies_for(&2)), Some(520));
    assert_eq!(p.engine.queued(), 0);
    let w = p.spawned[0];
    let sid = p.running_on(w)[0];
    p.send(w, &WorkerMessage::Choke { sid });
    let invoked = p.workers[&w]
        .received
        .iter()
        .filter(|m| matches!(m, WorkerMessage::Invoke { .. }))
        .count();
    assert_eq!(invoked, 1, "the expired job was never dispatched");
}

#[test]
fn a_deadline_passing_while_running_means_520() {
    let mut p = pool(
        config(),
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", policy(Some(10_000), Some(300))).unwrap();
    p.advance(Duration::from_millis(300));
    assert_eq!(error_code(&p.replies_for(&1)), Some(520));
}

#[test]
fn heartbeats_flow_and_a_silent_worker_is_killed() {
    // The job runs for 50 s: longer than the default job timeout, which is not under test.
    let mut p = pool(
        EngineConfig {
            job_timeout: None,
            ..config()
        },
        Behaviour {
            echo: false,
            heartbeat: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.advance(Duration::from_secs(5));
    let beats = |p: &SimPool<u32>| {
        p.workers[&w]
            .received
            .iter()
            .filter(|m| **m == WorkerMessage::Heartbeat)
            .count()
    };
    assert_eq!(beats(&p), 1);
    p.advance(Duration::from_secs(5));
    assert_eq!(beats(&p), 2);
    // The worker heartbeats back at 20 s; silence from then on kills it 30 s later.
    p.advance(Duration::from_secs(10));
    p.send(w, &WorkerMessage::Heartbeat);
    p.advance(Duration::from_secs(29));
    assert!(p.workers.contains_key(&w));
    p.advance(Duration::from_secs(1));
    assert!(!p.workers.contains_key(&w));
    let replies = p.replies_for(&1);
    assert_eq!(error_code(&replies), Some(500));
    assert!(matches!(&replies[0], ReplyEvent::Error(f) if f.message.contains("heartbeat")));
}

#[test]
fn startup_timeout_reports_stderr() {
    let mut p = pool(
        config(),
        Behaviour {
            handshake: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.engine.worker_stderr(w, "Traceback: NameError: nme");
    p.advance(Duration::from_secs(10));
    assert!(!p.workers.contains_key(&w));
    let err = p.engine.info().last_error.expect("the failure is recorded");
    assert!(
        err.message.contains("no handshake within 10000 ms"),
        "{}",
        err.message
    );
    assert!(err.message.contains("NameError"), "{}", err.message);
    assert!(p.logs.iter().any(|(_, m)| m.contains("NameError")));
}

#[test]
fn a_crash_loop_breaks_the_app_then_it_recovers_with_backoff() {
    let mut cfg = config();
    cfg.restart_intensity = 2;
    cfg.restart_period = Duration::from_secs(10);
    cfg.queue_limit = 10;
    // Callers are told the whole report (`expose-errors`); by default they get one short
    // line (engine_failing.rs).
    cfg.expose_errors = true;
    let mut p = pool(cfg, Behaviour::MANUAL);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    p.submit(2, b"x", JobPolicy::default()).unwrap();
    // Workers die before their handshake, with a traceback, three times: more than 2.
    for round in 0..3 {
        let w = *p
            .workers
            .keys()
            .next()
            .unwrap_or_else(|| panic!("round {round}: a worker"));
        p.engine
            .worker_stderr(w, "ImportError: no module named foo");
        p.exit(w, ExitStatus::Code(1));
        p.advance(Duration::from_millis(100));
        // Close any other starting workers the same way.
        for w in p.workers.keys().copied().collect::<Vec<_>>() {
            if round < 2 {
                continue;
            }
            p.exit(w, ExitStatus::Code(1));
        }
    }
    let AppState::Broken { reason, retry_at } = p.engine.state().clone() else {
        panic!("broken expected, got {:?}", p.engine.state())
    };
    assert!(reason.contains("ImportError"), "{reason}");
    for tag in [1, 2] {
        let replies = p.replies_for(&tag);
        assert_eq!(terminal_count(&replies), 1);
        assert!(
            matches!(&replies[0], ReplyEvent::Error(f) if f.code == 500 && f.message.contains("ImportError"))
        );
    }
    let refused = p.submit(3, b"x", JobPolicy::default()).unwrap_err();
    assert_eq!(refused.code, 503);
    assert!(p.events.iter().any(|e| matches!(
        e,
        EngineEvent::State {
            state: "broken",
            ..
        }
    )));
    // Back-off: the first lasts one second.
    // Broken at the last exit, 100 ms ago; the first back-off lasts one second.
    assert_eq!(retry_at, p.now + Duration::from_millis(900));
    p.now = retry_at;
    p.advance(Duration::ZERO);
    assert_eq!(p.engine.state(), &AppState::Running);
    p.behaviour = Behaviour::ECHO;
    p.submit(4, b"again", JobPolicy::default()).unwrap();
    assert_eq!(p.replies_for(&4).last(), Some(&ReplyEvent::End));
}

#[test]
fn consecutive_breaks_double_the_backoff() {
    let mut cfg = config();
    cfg.restart_intensity = 0;
    cfg.pool_min = 1;
    let mut p = pool(cfg, Behaviour::MANUAL);
    let mut backoffs = Vec::new();
    for _ in 0..3 {
        let w = *p
            .workers
            .keys()
            .next()
            .expect("pool-min keeps a worker coming");
        p.exit(w, ExitStatus::Code(1));
        let AppState::Broken { retry_at, .. } = p.engine.state().clone() else {
            panic!("broken")
        };
        backoffs.push(retry_at - p.now);
        // Retired workers of the broken app exit when told.
        for w in p.workers.keys().copied().collect::<Vec<_>>() {
            p.exit(w, ExitStatus::Code(0));
        }
        p.now = retry_at;
        p.advance(Duration::ZERO);
    }
    assert_eq!(
        backoffs,
        vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4)
        ]
    );
}

#[test]
fn idle_workers_are_reaped_down_to_pool_min() {
    let mut cfg = config();
    cfg.pool_limit = 3;
    cfg.pool_min = 1;
    cfg.idle_timeout = Duration::from_secs(60);
    cfg.queue_limit = 10;
    let mut p = pool(
        cfg,
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    for tag in 1..=3 {
        p.submit(tag, b"x", JobPolicy::default()).unwrap();
    }
    assert_eq!(p.workers.len(), 3);
    for w in p.workers.keys().copied().collect::<Vec<_>>() {
        for sid in p.running_on(w) {
            p.send(w, &WorkerMessage::Choke { sid });
        }
    }
    p.advance(Duration::from_secs(59));
    assert_eq!(p.workers.len(), 3);
    p.advance(Duration::from_secs(1));
    assert_eq!(p.workers.len(), 1, "idle workers left; pool-min stays");
    p.advance(Duration::from_secs(600));
    assert_eq!(p.workers.len(), 1);
}

#[test]
fn max_requests_recycles_a_worker() {
    let mut cfg = config();
    cfg.pool_limit = 1;
    cfg.max_requests = 2;
    let mut p = pool(cfg, Behaviour::ECHO);
    p.submit(1, b"a", JobPolicy::default()).unwrap();
    let first = p.spawned[0];
    p.submit(2, b"b", JobPolicy::default()).unwrap();
    assert!(!p.workers.contains_key(&first), "recycled after two jobs");
    p.submit(3, b"c", JobPolicy::default()).unwrap();
    assert_eq!(p.spawned.len(), 2);
    assert_eq!(p.replies_for(&3).last(), Some(&ReplyEvent::End));
}

#[test]
fn a_dead_worker_fails_its_job_with_500_and_the_next_job_works() {
    let mut p = pool(
        config(),
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.exit(w, ExitStatus::Signal(9));
    let replies = p.replies_for(&1);
    assert_eq!(terminal_count(&replies), 1);
    assert!(
        matches!(&replies[0], ReplyEvent::Error(f) if f.code == 500 && f.message.contains("signal 9"))
    );
    p.behaviour = Behaviour::ECHO;
    p.submit(2, b"y", JobPolicy::default()).unwrap();
    assert_eq!(p.replies_for(&2).last(), Some(&ReplyEvent::End));
}

#[test]
fn cancel_answers_499_once() {
    let mut p = pool(
        config(),
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    let job = p.submit(1, b"x", JobPolicy::default()).unwrap();
    p.engine.cancel(p.now, job);
    p.pump();
    p.engine.cancel(p.now, job);
    p.pump();
    assert_eq!(
        p.replies_for(&1),
        vec![ReplyEvent::Error(Failure::new(499, "cancelled"))]
    );
    let w = p.spawned[0];
    let sid = job.to_u64();
    p.send(
        w,
        &WorkerMessage::Chunk {
            sid,
            data: Bytes::from_static(b"late"),
        },
    );
    p.send(w, &WorkerMessage::Choke { sid });
    assert_eq!(p.replies_for(&1).len(), 1, "late replies are dropped");
}

#[test]
fn a_queued_job_can_be_cancelled() {
    let mut cfg = config();
    cfg.pool_limit = 1;
    let mut p = pool(
        cfg,
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let queued = p.submit(2, b"y", JobPolicy::default()).unwrap();
    p.engine.cancel(p.now, queued);
    p.pump();
    assert_eq!(error_code(&p.replies_for(&2)), Some(499));
    assert_eq!(p.engine.queued(), 0);
}

#[test]
fn collected_replies_over_the_limit_fail_with_413() {
    let mut p = pool(config(), Behaviour::ECHO);
    let request = JobRequest {
        task: 0,
        event: "event".into(),
        policy: JobPolicy::default(),
        reply: 1,
        mode: ReplyMode::Collect { limit: 4 },
        origin: None,
        body: Some(vec![Bytes::from_static(b"12345")]),
    };
    p.submit_request(request.clone()).unwrap();
    assert_eq!(error_code(&p.replies_for(&1)), Some(413));
    let small = JobRequest {
        reply: 2,
        body: Some(vec![Bytes::from_static(b"12")]),
        ..request
    };
    p.submit_request(small).unwrap();
    assert_eq!(
        p.replies_for(&2),
        vec![ReplyEvent::Collected(vec![Bytes::from_static(b"12")])]
    );
}

#[test]
fn streamed_requests_are_buffered_while_queued_and_flushed_in_order() {
    let mut p = pool(config(), Behaviour::ECHO);
    let request = JobRequest {
        task: 0,
        event: "event".into(),
        policy: JobPolicy::default(),
        reply: 1,
        mode: ReplyMode::Stream,
        origin: None,
        body: None,
    };
    // No worker yet (it starts on demand): chunks wait in the job.
    let job = p.engine.submit(p.now, request).unwrap();
    p.engine.push_chunk(job, Bytes::from_static(b"ab"));
    p.engine.push_chunk(job, Bytes::from_static(b"cd"));
    p.pump();
    p.engine.push_chunk(job, Bytes::from_static(b"ef"));
    p.engine.end_request(job);
    p.pump();
    assert_eq!(
        p.replies_for(&1),
        vec![
            ReplyEvent::Chunk(Bytes::from_static(b"abcdef")),
            ReplyEvent::End
        ]
    );
}

#[test]
fn garbage_from_a_worker_is_logged_and_survived_but_broken_framing_kills_it() {
    let mut cfg = config();
    cfg.max_message = 1024;
    let mut p = pool(
        cfg,
        Behaviour {
            echo: false,
            ..Behaviour::ECHO
        },
    );
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    // A well-framed message that is not msgpack: dropped, logged.
    p.send_bytes(w, &[0, 0, 0, 2, 0xc1, 0xc1]);
    assert!(p.workers.contains_key(&w));
    assert!(p.logs.iter().any(|(_, m)| m.contains("bad message")));
    // A length prefix over max-message: framing is lost, the worker goes, its job fails.
    p.send_bytes(w, &[0, 1, 0, 0]);
    assert!(p
        .workers
        .get(&w)
        .is_none_or(|sw| sw.signals.contains(&Signal::Kill)));
    assert_eq!(error_code(&p.replies_for(&1)), Some(500));
}

#[test]
fn a_handshake_with_the_wrong_id_or_version_kills_the_worker() {
    let mut p = pool(config(), Behaviour::MANUAL);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.send(
        w,
        &WorkerMessage::Handshake {
            worker_id: "someone-else".into(),
            version: 1,
            pid: 1,
        },
    );
    assert_eq!(p.workers[&w].signals, vec![Signal::Kill]);
    p.exit(w, ExitStatus::Signal(9));
    let w2 = *p.workers.keys().next().expect("a replacement");
    p.send(
        w2,
        &WorkerMessage::Handshake {
            worker_id: w2.to_string(),
            version: 99,
            pid: 1,
        },
    );
    assert_eq!(p.workers[&w2].signals, vec![Signal::Kill]);
}

#[test]
fn spawn_failures_count_as_crashes() {
    let mut cfg = config();
    cfg.restart_intensity = 1;
    let mut p = pool(cfg, Behaviour::MANUAL);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    for _ in 0..2 {
        let w = *p.workers.keys().next().expect("a worker");
        p.workers.remove(&w);
        p.engine.spawn_failed(p.now, w, "No such file or directory");
        p.pump();
    }
    assert!(
        matches!(p.engine.state(), AppState::Broken { reason, .. } if reason.contains("No such file"))
    );
}

#[test]
fn stop_fails_the_queue_lets_running_jobs_finish_and_escalates() {
    let mut cfg = config();
    cfg.pool_limit = 2;
    cfg.pool_min = 2;
    let mut p = pool(cfg, Behaviour::MANUAL);
    let (a, b) = (p.spawned[0], p.spawned[1]);
    p.handshake(a);
    p.handshake(b);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    p.submit(2, b"y", JobPolicy::default()).unwrap();
    p.submit(3, b"z", JobPolicy::default()).unwrap();
    p.engine.stop(p.now);
    p.pump();
    assert_eq!(error_code(&p.replies_for(&3)), Some(503));
    assert_eq!(
        p.submit(4, b"w", JobPolicy::default()).unwrap_err().code,
        503
    );
    assert!(p.workers[&a].terminating && p.workers[&b].terminating);
    // a finishes its job and exits; b hangs.
    let sid = p.running_on(a)[0];
    p.send(a, &WorkerMessage::Choke { sid });
    assert_eq!(p.replies_for(&1), vec![ReplyEvent::End]);
    p.exit(a, ExitStatus::Code(0));
    p.advance(Duration::from_secs(5));
    assert_eq!(p.workers[&b].signals, vec![Signal::Term]);
    p.advance(Duration::from_secs(5));
    assert_eq!(p.workers[&b].signals, vec![Signal::Term, Signal::Kill]);
    assert!(!p.stopped);
    p.exit(b, ExitStatus::Signal(9));
    assert!(p.stopped);
    assert_eq!(p.engine.state(), &AppState::Stopped);
    assert_eq!(error_code(&p.replies_for(&2)), Some(500));
}

#[test]
fn the_pool_grows_with_the_queue_but_never_past_its_limit() {
    let mut cfg = config();
    cfg.pool_limit = 4;
    cfg.queue_limit = 100;
    cfg.grow_threshold = 10;
    let mut p = pool(cfg, Behaviour::MANUAL);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    assert_eq!(p.workers.len(), 1, "one waiting job asks for one worker");
    for tag in 2..=11 {
        p.submit(tag, b"x", JobPolicy::default()).unwrap();
    }
    assert_eq!(p.workers.len(), 2, "ceil(11 / 10)");
    for tag in 12..=100 {
        p.submit(tag, b"x", JobPolicy::default()).unwrap();
    }
    assert_eq!(p.workers.len(), 4);
    assert_eq!(p.engine.info().workers.starting, 4);
}

#[test]
fn the_busyness_policy_can_be_chosen() {
    let mut cfg = config();
    cfg.pool_policy = PoolPolicyConfig::Busyness(Default::default());
    cfg.pool_limit = 4;
    let mut p = pool(cfg, Behaviour::ECHO);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    assert_eq!(p.replies_for(&1).last(), Some(&ReplyEvent::End));
}

#[test]
fn a_worker_leaving_on_its_own_is_not_a_crash() {
    let mut p = pool(config(), Behaviour::MANUAL);
    p.submit(1, b"x", JobPolicy::default()).unwrap();
    let w = p.spawned[0];
    p.handshake(w);
    let sid = p.running_on(w)[0];
    p.send(w, &WorkerMessage::Choke { sid });
    p.send(
        w,
        &WorkerMessage::Terminate {
            reason: "idle".into(),
        },
    );
    let states: Vec<_> = p
        .engine
        .worker_loads()
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert_eq!(states, vec![WorkerState::Draining]);
    p.exit(w, ExitStatus::Code(0));
    assert!(p.engine.info().last_error.is_none());
}

#[test]
fn absurd_policies_do_not_overflow_the_clock() {
    let mut p = pool(config(), Behaviour::ECHO);
    p.submit(1, b"x", policy(Some(u64::MAX), Some(u64::MAX)))
        .unwrap();
    assert_eq!(p.replies_for(&1).last(), Some(&ReplyEvent::End));
    p.advance(Duration::from_secs(3600));
}
