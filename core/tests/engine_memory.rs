//! Engine memory per queued job, besides the job's body.
//!
//! A counting global allocator keeps the live heap bytes of this test binary. An engine whose
//! only worker never handshakes (so nothing is dispatched) takes 10,000 jobs with tiny
//! bodies; the growth of the live heap, less the body bytes, divided by the jobs, is what
//! one queued job costs. The target is 256 bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use cocaine_core::engine::{Engine, EngineConfig, EngineOutput, JobPolicy, JobRequest, ReplyMode};
use cocaine_core::AppId;

/// `System`, counting the bytes it has handed out and not yet taken back.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to `System` unchanged; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const JOBS: usize = 10_000;
const BODY: usize = 8;
/// The target for one queued job, body not counted.
const TARGET: f64 = 256.0;

#[test]
fn a_queued_job_costs_at_most_256_bytes_besides_its_body() {
    let now = Instant::now();
    let config = EngineConfig {
        pool_limit: 1,
        pool_min: 1,
        queue_limit: JOBS,
        concurrency: 1,
        ..EngineConfig::default()
    };
    let event: Arc<str> = Arc::from("ping");
    let mut engine: Engine<u64> = Engine::new(
        now,
        AppId(1),
        Arc::from("memory"),
        config,
        vec![event.clone()],
    );
    // The worker is spawned and never handshakes: every job stays queued.
    let mut spawned = 0;
    while let Some(out) = engine.poll_output() {
        spawned += usize::from(matches!(out, EngineOutput::Spawn { .. }));
    }
    assert_eq!(spawned, 1);

    let before = live();
    // What the bodies themselves take on the heap, measured rather than assumed.
    let mut body_bytes = 0;
    for i in 0..JOBS {
        let mark = live();
        let body = Bytes::from(vec![i as u8; BODY]);
        body_bytes += live() - mark;
        let request = JobRequest {
            task: 0,
            event: event.clone(),
            policy: JobPolicy::default(),
            reply: i as u64,
            mode: ReplyMode::Stream,
            origin: None,
            body: Some(vec![body]),
        };
        engine.submit(now, request).expect("admitted");
    }
    let after = live();
    assert_eq!(engine.queued(), JOBS, "nothing was dispatched");
    assert!(engine.poll_output().is_none(), "queued jobs make no output");

    let per_job = (after - before - body_bytes) as f64 / JOBS as f64;
    println!(
        "engine memory per queued job, body not counted: {per_job:.1} bytes \
         ({JOBS} jobs of {BODY}-byte bodies; live heap +{} bytes, of which bodies {body_bytes})",
        after - before
    );
    assert!(
        per_job <= TARGET,
        "a queued job costs {per_job:.1} bytes besides its body; the target is {TARGET}"
    );
    drop(engine);
}
