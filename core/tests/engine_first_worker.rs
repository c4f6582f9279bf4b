//! A job that finds its app's pool empty (`pool-min` 0) starts a worker at once, without
//! waiting for a timer, and runs the moment that worker says hello (issue 12). Time is moved
//! by hand: here it does not move at all.

use std::time::Instant;

use cocaine_core::engine::{EngineConfig, JobPolicy};
use cocaine_core::sim::{Behaviour, SimPool};

fn empty_pool() -> SimPool<u32> {
    let config = EngineConfig {
        pool_min: 0,
        pool_limit: 4,
        ..EngineConfig::default()
    };
    SimPool::new(Instant::now(), config, &["event"], Behaviour::MANUAL)
}

#[test]
fn a_job_for_an_empty_pool_spawns_a_worker_at_once() {
    let mut p = empty_pool();
    assert!(
        p.spawned.is_empty(),
        "pool-min 0 starts nothing before a job"
    );
    let start = p.now;
    p.submit(1, b"first", JobPolicy::default()).unwrap();
    assert_eq!(p.spawned.len(), 1, "the job itself starts the worker");
    assert_eq!(p.now, start);
    // Nothing runs before the handshake.
    let worker = p.spawned[0];
    assert!(p.running_on(worker).is_empty());
}

#[test]
fn the_waiting_job_runs_the_moment_its_worker_says_hello() {
    let mut p = empty_pool();
    let start = p.now;
    p.submit(1, b"first", JobPolicy::default()).unwrap();
    let worker = p.spawned[0];
    p.handshake(worker);
    assert_eq!(
        p.running_on(worker).len(),
        1,
        "dispatched with the handshake"
    );
    let invoked: Vec<Instant> = p.workers[&worker].invoked_at.values().copied().collect();
    assert_eq!(invoked, vec![start], "no timer tick in between");
}

#[test]
fn jobs_that_arrive_while_the_first_worker_starts_do_not_wait_for_more_timers() {
    let mut p = empty_pool();
    p.submit(1, b"a", JobPolicy::default()).unwrap();
    p.submit(2, b"b", JobPolicy::default()).unwrap();
    p.submit(3, b"c", JobPolicy::default()).unwrap();
    let spawned = p.spawned.clone();
    assert!(!spawned.is_empty());
    for worker in &spawned {
        p.handshake(*worker);
    }
    let running: usize = spawned.iter().map(|w| p.running_on(*w).len()).sum();
    assert_eq!(
        running,
        spawned.len().min(3),
        "every ready worker took a job at its hello"
    );
}
