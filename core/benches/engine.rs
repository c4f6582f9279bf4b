//! Engine throughput: jobs per second through the whole path, against the codec floor.
//!
//! One job: `Engine::submit` (admission, queue), dispatch to a worker (the engine frames
//! invoke + request chunk + choke), the simulated worker decoding those frames to learn the
//! sid, its reply (one chunk and a choke, real framed bytes) fed back through
//! `Engine::worker_data`, and every engine output drained with `poll_output` (the reply's
//! `Chunk` and `End` events consumed). Pools of 1, 10 and 100 workers, concurrency 1, all
//! handshaked before measuring.
//!
//! The baseline is the codec work alone for the same messages per job: encode the invoke,
//! request chunk and choke, frame-decode and decode them, encode the reply chunk and choke,
//! frame-decode and decode them. No engine can go under it.
//!
//! After criterion's report the binary prints one line per pool size from its own timed loop
//! (`std::time::Instant`), engine and baseline alternating, best of a few rounds, with their
//! ratio.
//!
//! Run: `cargo bench -p cocaine-core --bench engine -- --warm-up-time 1 --measurement-time 3`.
//! See docs/benchmarks.md.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};

use cocaine_core::codec::frame::FrameDecoder;
use cocaine_core::codec::worker::{
    encode_choke, encode_chunk, encode_handshake, encode_invoke, JobMeta, WorkerMessage,
    PROTOCOL_VERSION,
};
use cocaine_core::engine::{
    Engine, EngineConfig, EngineOutput, JobPolicy, JobRequest, ReplyEvent, ReplyMode,
};
use cocaine_core::{AppId, WorkerId};

/// Jobs submitted per measured batch before they are answered.
const BATCH: usize = 1000;
/// Pool sizes measured.
const POOLS: [usize; 3] = [1, 10, 100];
/// The event (and task) name, as the engine puts it in every invoke.
const EVENT: &str = "ping";
const REQUEST: &[u8] = b"hello";
const REPLY: &[u8] = b"world";
/// The target.
const TARGET_JOBS_PER_SEC: f64 = 1e6;

/// A worker of the bench: just enough to learn sids and answer them.
struct SimWorker {
    decoder: FrameDecoder,
    /// The reply for the job it holds (concurrency 1), encoded when the invoke arrived.
    reply: BytesMut,
}

/// An engine with `pool` handshaked workers, at a frozen instant (no timer ever fires).
struct EngineBench {
    engine: Engine<u64>,
    now: Instant,
    workers: Vec<SimWorker>,
    event: Arc<str>,
    body: Bytes,
    /// Workers whose reply is ready, in the order their invokes arrived.
    answer: Vec<WorkerId>,
    next_token: u64,
}

impl EngineBench {
    fn new(pool: usize) -> Self {
        let now = Instant::now();
        let config = EngineConfig {
            pool_limit: pool,
            pool_min: pool,
            queue_limit: 1 << 20,
            concurrency: 1,
            ..EngineConfig::default()
        };
        let event: Arc<str> = Arc::from(EVENT);
        let mut engine = Engine::new(
            now,
            AppId(1),
            Arc::from("bench"),
            config,
            vec![event.clone()],
        );
        let mut spawned = Vec::new();
        while let Some(out) = engine.poll_output() {
            if let EngineOutput::Spawn { worker } = out {
                spawned.push(worker);
            }
        }
        assert_eq!(spawned.len(), pool, "pool-min workers are spawned at once");
        let mut workers = Vec::with_capacity(pool);
        for (i, id) in spawned.iter().enumerate() {
            assert_eq!(slot(*id), i, "worker ids are dense from 0");
            let mut buf = BytesMut::new();
            encode_handshake(&mut buf, &id.to_string(), PROTOCOL_VERSION, 1000 + i as u32);
            engine.worker_data(now, *id, &buf);
            workers.push(SimWorker {
                decoder: FrameDecoder::new(usize::MAX),
                reply: BytesMut::with_capacity(64),
            });
        }
        while engine.poll_output().is_some() {}
        let mut bench = Self {
            engine,
            now,
            workers,
            event,
            body: Bytes::from_static(REQUEST),
            answer: Vec::with_capacity(pool),
            next_token: 0,
        };
        // One batch so that every buffer has reached its steady size.
        bench.run_batch(BATCH);
        bench
    }

    /// Submits `k` jobs, then plays the workers until every job has its end.
    fn run_batch(&mut self, k: usize) {
        for _ in 0..k {
            let request = JobRequest {
                task: 0,
                event: self.event.clone(),
                policy: JobPolicy::default(),
                reply: self.next_token,
                mode: ReplyMode::Stream,
                origin: None,
                body: Some(vec![self.body.clone()]),
            };
            self.next_token += 1;
            if let Err(failure) = self.engine.submit(self.now, request) {
                panic!("job refused: {failure:?}");
            }
        }
        let mut ended = 0;
        loop {
            while let Some(out) = self.engine.poll_output() {
                match out {
                    EngineOutput::ToWorker { worker, bytes } => self.worker_reads(worker, &bytes),
                    EngineOutput::Reply { reply, event } => match event {
                        ReplyEvent::Chunk(data) => {
                            black_box((reply, data));
                        }
                        ReplyEvent::End => ended += 1,
                        other => panic!("job {reply} ended with {other:?}"),
                    },
                    other => panic!("unexpected output {other:?}"),
                }
            }
            if self.answer.is_empty() {
                break;
            }
            for worker in std::mem::take(&mut self.answer) {
                let reply = &self.workers[slot(worker)].reply;
                self.engine.worker_data(self.now, worker, reply);
            }
        }
        assert_eq!(ended, k, "every job ends once");
    }

    /// The worker's side: frame-decode and decode what the engine sent, and for an invoke
    /// encode its reply (one chunk, then a choke).
    fn worker_reads(&mut self, worker: WorkerId, bytes: &[u8]) {
        let w = &mut self.workers[slot(worker)];
        w.decoder.push(bytes);
        while let Ok(Some(frame)) = w.decoder.next_frame() {
            match WorkerMessage::decode_bytes(&frame) {
                Ok(WorkerMessage::Invoke { sid, .. }) => {
                    w.reply.clear();
                    encode_chunk(&mut w.reply, sid, REPLY);
                    encode_choke(&mut w.reply, sid);
                    self.answer.push(worker);
                }
                Ok(message) => {
                    black_box(message);
                }
                Err(e) => panic!("the engine sent a bad frame: {e}"),
            }
        }
    }
}

/// Worker ids are `app << 32 | n`, n counting from 0.
fn slot(worker: WorkerId) -> usize {
    (worker.0 & 0xffff_ffff) as usize
}

/// The codec work of the same jobs, with no engine: the floor.
struct Baseline {
    event: Arc<str>,
    meta: JobMeta,
    /// Sids the way the engine makes them: generation in the high half, slot in the low.
    sid: u64,
    to_worker: BytesMut,
    to_node: BytesMut,
    worker_decoder: FrameDecoder,
    node_decoder: FrameDecoder,
}

impl Baseline {
    fn new() -> Self {
        let mut baseline = Self {
            event: Arc::from(EVENT),
            // What the engine sends for a job with no policy and no origin.
            meta: JobMeta {
                task: Some(EVENT.to_owned()),
                ..JobMeta::default()
            },
            sid: 1 << 32,
            to_worker: BytesMut::with_capacity(256),
            to_node: BytesMut::with_capacity(64),
            worker_decoder: FrameDecoder::new(usize::MAX),
            node_decoder: FrameDecoder::new(usize::MAX),
        };
        baseline.run_batch(BATCH);
        baseline
    }

    fn run_batch(&mut self, k: usize) {
        for i in 0..k {
            let sid = self.sid | (i as u64 % 128);
            // Node -> worker: invoke, the request's one chunk, its choke.
            self.to_worker.clear();
            encode_invoke(&mut self.to_worker, sid, &self.event, &self.meta);
            encode_chunk(&mut self.to_worker, sid, REQUEST);
            encode_choke(&mut self.to_worker, sid);
            self.worker_decoder.push(&self.to_worker);
            let mut got = None;
            while let Ok(Some(frame)) = self.worker_decoder.next_frame() {
                if let Ok(WorkerMessage::Invoke { sid, .. }) = WorkerMessage::decode_bytes(&frame) {
                    got = Some(sid);
                }
            }
            let sid = got.expect("an invoke");
            // Worker -> node: one reply chunk, a choke; decoded as `Engine::worker_data` does.
            self.to_node.clear();
            encode_chunk(&mut self.to_node, sid, REPLY);
            encode_choke(&mut self.to_node, sid);
            self.node_decoder.push(&self.to_node);
            while let Ok(Some(frame)) = self.node_decoder.next_frame() {
                black_box(WorkerMessage::decode(&frame).ok());
            }
        }
        self.sid = self.sid.wrapping_add(1 << 32);
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    for pool in POOLS {
        let mut bench = EngineBench::new(pool);
        group.bench_with_input(BenchmarkId::new("pool", pool), &pool, |b, _| {
            b.iter(|| bench.run_batch(BATCH));
        });
    }
    let mut baseline = Baseline::new();
    group.bench_function("baseline", |b| b.iter(|| baseline.run_batch(BATCH)));
    group.finish();
}

/// Jobs per second of `run` (which does `BATCH` jobs a call) over about `time` of wall clock:
/// by the wall clock, and by this thread's time on a CPU where the kernel tells it.
fn jobs_per_sec(time: Duration, mut run: impl FnMut()) -> Rate {
    let warm = Instant::now();
    while warm.elapsed() < time / 4 {
        run();
    }
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut batches = 0u64;
    while start.elapsed() < time {
        run();
        batches += 1;
    }
    let wall = start.elapsed();
    let jobs = (batches * BATCH as u64) as f64;
    let cpu = match (cpu_start, cpu_time()) {
        (Some(a), Some(b)) if b > a => Some(jobs / (b - a).as_secs_f64()),
        _ => None,
    };
    Rate {
        wall: jobs / wall.as_secs_f64(),
        cpu,
    }
}

/// Jobs per second by the wall clock, and per second this thread spent on a CPU.
#[derive(Clone, Copy, Default)]
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

impl Rate {
    /// The better of two measures of the same thing, each figure on its own.
    fn best(self, other: Rate) -> Rate {
        Rate {
            wall: self.wall.max(other.wall),
            cpu: match (self.cpu, other.cpu) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Time this thread has run on a CPU (Linux schedstat, nanoseconds): what another process's
/// load on a shared machine does not add to, unlike the wall clock.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Rounds of each summary measure; the best is kept, since on a shared machine other load
/// only ever slows a round down.
const ROUNDS: usize = 3;

fn summary(time: Duration) {
    println!();
    println!(
        "summary: jobs/s on one core, batches of {BATCH}, best of {ROUNDS} rounds of {} ms; \
         engine and baseline alternate; wall clock [and on-CPU time of the thread]",
        time.as_millis()
    );
    for pool in POOLS {
        let mut bench = EngineBench::new(pool);
        let mut baseline = Baseline::new();
        let (mut engine, mut floor) = (Rate::default(), Rate::default());
        for _ in 0..ROUNDS {
            engine = engine.best(jobs_per_sec(time, || bench.run_batch(BATCH)));
            floor = floor.best(jobs_per_sec(time, || baseline.run_batch(BATCH)));
        }
        let verdict = if engine.wall.max(engine.cpu.unwrap_or(0.0)) >= TARGET_JOBS_PER_SEC {
            "meets"
        } else {
            "misses"
        };
        let show = |r: Rate| match r.cpu {
            Some(cpu) => format!(
                "{:.2} M jobs/s ({:.0} ns/job) [on-CPU {:.2} M jobs/s, {:.0} ns/job]",
                r.wall / 1e6,
                1e9 / r.wall,
                cpu / 1e6,
                1e9 / cpu
            ),
            None => format!("{:.2} M jobs/s ({:.0} ns/job)", r.wall / 1e6, 1e9 / r.wall),
        };
        let ratio = match (engine.cpu, floor.cpu) {
            (Some(e), Some(f)) => format!("{:.2}x [{:.2}x]", floor.wall / engine.wall, f / e),
            _ => format!("{:.2}x", floor.wall / engine.wall),
        };
        println!(
            "pool {pool:>3}: engine {}, baseline {}, engine/baseline time per job {ratio}; \
             {verdict} the 1 M jobs/s target",
            show(engine),
            show(floor),
        );
    }
}

fn main() {
    support::run_with_summary(criterion_benches, summary);
}
