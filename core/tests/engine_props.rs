//! Property tests: random sequences of arrivals, worker replies, crashes, hangs and time
//! jumps, with the engine's invariants checked after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::engine::{AppState, EngineConfig, JobPolicy, ReplyEvent};
use cocaine_core::process::ExitStatus;
use cocaine_core::sim::{Behaviour, SimPool};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Submit {
        urgent: bool,
        timeout: Option<u64>,
        deadline: Option<u64>,
    },
    Handshake(usize),
    Chunk(usize, usize),
    Choke(usize, usize),
    Fail(usize, usize),
    Crash(usize),
    Leave(usize),
    Heartbeat(usize),
    Garbage(usize, Vec<u8>),
    Cancel(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), proptest::option::of(1u64..3000), proptest::option::of(1u64..3000))
            .prop_map(|(urgent, timeout, deadline)| Op::Submit { urgent, timeout, deadline }),
        3 => any::<usize>().prop_map(Op::Handshake),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(w, j)| Op::Chunk(w, j)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(w, j)| Op::Choke(w, j)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(w, j)| Op::Fail(w, j)),
        1 => any::<usize>().prop_map(Op::Crash),
        1 => any::<usize>().prop_map(Op::Leave),
        1 => any::<usize>().prop_map(Op::Heartbeat),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(w, b)| Op::Garbage(w, b)),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (0u64..4000).prop_map(Op::Advance),
    ]
}

fn engine_config() -> impl Strategy<Value = EngineConfig> {
    (
        1usize..4,
        1usize..8,
        1usize..3,
        0usize..3,
        0u64..4,
        0u32..4,
        1usize..4,
    )
        .prop_map(
            |(
                pool_limit,
                queue_limit,
                concurrency,
                pool_min,
                max_requests,
                restart_intensity,
                grow_threshold,
            )| {
                EngineConfig {
                    pool_limit,
                    pool_min: pool_min.min(pool_limit),
                    queue_limit,
                    concurrency,
                    grow_threshold,
                    max_requests,
                    restart_intensity,
                    restart_period: Duration::from_secs(2),
                    heartbeat_interval: Duration::from_millis(1000),
                    heartbeat_timeout: Duration::from_millis(5000),
                    startup_timeout: Duration::from_millis(2000),
                    termination_timeout: Duration::from_millis(1000),
                    idle_timeout: Duration::from_millis(10_000),
                    ..EngineConfig::default()
                }
            },
        )
}

/// What the test knows of each submitted job, by reply token.
struct Ledger {
    deadlines: BTreeMap<u64, Option<Instant>>,
    accepted: BTreeSet<u64>,
    sid_to_token: BTreeMap<u64, u64>,
}

fn pick<T: Copy>(items: &[T], n: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[n % items.len()])
}

fn apply(p: &mut SimPool<u64>, ledger: &mut Ledger, next_token: &mut u64, op: &Op) {
    let workers: Vec<_> = p.workers.keys().copied().collect();
    match op {
        Op::Submit {
            urgent,
            timeout,
            deadline,
        } => {
            let token = *next_token;
            *next_token += 1;
            let policy = JobPolicy {
                urgent: *urgent,
                timeout: timeout.map(Duration::from_millis),
                deadline: deadline.map(Duration::from_millis),
            };
            let now = p.now;
            if let Ok(job) = p.submit(token, b"req", policy) {
                ledger.accepted.insert(token);
                ledger
                    .deadlines
                    .insert(token, policy.deadline.map(|d| now + d));
                ledger.sid_to_token.insert(job.to_u64(), token);
            }
        }
        Op::Handshake(w) => {
            if let Some(w) = pick(&workers, *w) {
                if !p.workers[&w].handshaked {
                    p.handshake(w);
                }
            }
        }
        Op::Chunk(w, j) | Op::Choke(w, j) | Op::Fail(w, j) => {
            let Some(w) = pick(&workers, *w) else { return };
            let Some(sid) = pick(&p.running_on(w), *j) else {
                return;
            };
            let message = match op {
                Op::Chunk(..) => WorkerMessage::Chunk {
                    sid,
                    data: Bytes::from_static(b"out"),
                },
                Op::Choke(..) => WorkerMessage::Choke { sid },
                _ => WorkerMessage::Error {
                    sid,
                    code: 502,
                    message: "app error".into(),
                },
            };
            p.send(w, &message);
        }
        Op::Crash(w) => {
            if let Some(w) = pick(&workers, *w) {
                p.exit(w, ExitStatus::Signal(9));
            }
        }
        Op::Leave(w) => {
            if let Some(w) = pick(&workers, *w) {
                p.send(
                    w,
                    &WorkerMessage::Terminate {
                        reason: "bored".into(),
                    },
                );
            }
        }
        Op::Heartbeat(w) => {
            if let Some(w) = pick(&workers, *w) {
                p.send(w, &WorkerMessage::Heartbeat);
            }
        }
        Op::Garbage(w, bytes) => {
            if let Some(w) = pick(&workers, *w) {
                p.send_bytes(w, bytes);
            }
        }
        Op::Cancel(n) => {
            let open: Vec<u64> = ledger.sid_to_token.keys().copied().collect();
            if let Some(sid) = pick(&open, *n) {
                p.engine
                    .cancel(p.now, cocaine_core::engine::JobId::from_u64(sid));
                p.pump();
            }
        }
        Op::Advance(ms) => p.advance(Duration::from_millis(*ms)),
    }
}

fn check(p: &SimPool<u64>, ledger: &mut Ledger) -> Result<(), TestCaseError> {
    let config = p.engine.config().clone();
    prop_assert!(
        p.engine.queued() <= config.queue_limit,
        "queue over its limit"
    );
    prop_assert!(
        p.engine.worker_count() <= config.pool_limit,
        "pool over its limit"
    );
    for (w, _, load) in p.engine.worker_loads() {
        prop_assert!(load <= config.concurrency, "{w} holds {load} jobs");
    }
    let mut terminals: BTreeMap<u64, usize> = BTreeMap::new();
    for (token, event) in &p.replies {
        prop_assert!(
            ledger.accepted.contains(token),
            "a reply for a job never accepted"
        );
        if event.is_terminal() {
            *terminals.entry(*token).or_default() += 1;
        }
    }
    for (token, n) in &terminals {
        prop_assert!(*n == 1, "job {token} got {n} terminal replies");
    }
    // No job starts after its deadline.
    for w in p.workers.values() {
        for (sid, at) in &w.invoked_at {
            let token = ledger.sid_to_token[sid];
            if let Some(deadline) = ledger.deadlines[&token] {
                prop_assert!(
                    *at < deadline,
                    "job {token} started at or after its deadline"
                );
            }
        }
    }
    Ok(())
}

fn run(config: EngineConfig, ops: &[Op]) -> Result<(Vec<String>, usize), TestCaseError> {
    let t0 = Instant::now();
    let mut p: SimPool<u64> = SimPool::new(t0, config.clone(), &["event"], Behaviour::MANUAL);
    let mut ledger = Ledger {
        deadlines: BTreeMap::new(),
        accepted: BTreeSet::new(),
        sid_to_token: BTreeMap::new(),
    };
    let mut next_token = 1;
    for op in ops {
        apply(&mut p, &mut ledger, &mut next_token, op);
        check(&p, &mut ledger)?;
    }
    // Arrivals stop; workers turn well-behaved; time passes.
    p.behaviour = Behaviour::ECHO;
    p.pump();
    for _ in 0..200 {
        p.advance(Duration::from_secs(5));
        check(&p, &mut ledger)?;
    }
    let terminal: BTreeSet<u64> = p
        .replies
        .iter()
        .filter(|(_, e)| e.is_terminal())
        .map(|(t, _)| *t)
        .collect();
    prop_assert_eq!(
        &terminal,
        &ledger.accepted,
        "every accepted job ends exactly once"
    );
    prop_assert_eq!(p.engine.state(), &AppState::Running);
    prop_assert_eq!(p.engine.queued(), 0);
    prop_assert_eq!(p.engine.jobs_in_flight(), 0);
    prop_assert_eq!(
        p.engine.worker_count(),
        config.pool_min,
        "the pool shrank to pool-min"
    );
    let trace = p
        .replies
        .iter()
        .map(|(t, e)| format!("{t}:{e:?}"))
        .collect();
    Ok((trace, p.spawned.len()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_sequence(config in engine_config(), ops in proptest::collection::vec(op(), 0..120)) {
        run(config, &ops)?;
    }

    #[test]
    fn the_same_inputs_give_the_same_outputs(config in engine_config(), ops in proptest::collection::vec(op(), 0..60)) {
        let first = run(config.clone(), &ops)?;
        let second = run(config, &ops)?;
        prop_assert_eq!(first, second);
    }
}

#[test]
fn a_refused_job_is_not_replied_to() {
    let config = EngineConfig {
        queue_limit: 1,
        pool_limit: 1,
        ..EngineConfig::default()
    };
    let mut p: SimPool<u64> = SimPool::new(Instant::now(), config, &["event"], Behaviour::MANUAL);
    p.submit(1, b"", JobPolicy::default()).unwrap();
    assert!(p.submit(2, b"", JobPolicy::default()).is_err());
    assert!(p
        .replies
        .iter()
        .all(|(t, e)| *t != 2 && !matches!(e, ReplyEvent::Error(_))));
}
