//! What one worker reply costs the node beside 1, 100 or 1000 idle apps: it should cost the
//! same (issue 12, "no per-wake-up work that grows with the number of apps").
//!
//! The node runs app `busy` (a recurring timer every 10 ms, one worker answering by hand) and
//! `idle` other apps, each with a recurring timer a day away and no worker. Each step, time
//! moves 10 ms and a tick fires `busy`'s timer, whose job reaches its simulated worker (not
//! measured); then the measured part: the worker's reply (one chunk and a choke, real framed
//! bytes) as `Input::WorkerData`, and every output it makes taken with `poll_output`.
//!
//! After criterion's report the binary prints one line per count of idle apps from its own
//! timed loop (best of a few rounds) with the ratio to 1 idle app.
//!
//! Instruction counts, steadier than time on a busy machine: `NODE_APPS_STEPS=IDLE:STEPS`
//! runs only `STEPS` steps beside `IDLE` idle apps, without criterion, so that
//! `valgrind --tool=callgrind --toggle-collect='*reply_step*' target/release/deps/node_apps-*`
//! counts the measured part alone. See docs/benchmarks.md.
//!
//! Run: `cargo bench -p cocaine-core --bench node_apps -- --warm-up-time 1 --measurement-time 3`.

mod support;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion};

use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{AppOrigin, Input, Node, NodeConfig, Output};
use cocaine_core::sim::{self, Answer, Script};
use cocaine_core::{Now, WorkerId};

/// Counts of idle apps measured.
const IDLE: [usize; 3] = [1, 100, 1000];
/// How often `busy`'s timer fires, in simulated time.
const STEP: Duration = Duration::from_millis(10);
const BUSY: &str = "busy";

fn manifest(name: &str, interval_ms: u64, pool_min: usize) -> Manifest {
    let json = format!(
        r#"{{"type": "python", "args": "local:///srv/t", "engine": {{"pool-min": {pool_min}}},
            "tasks": {{"tick": {{"type": "recurring-timer", "interval": {interval_ms}}}}}}}"#
    );
    Manifest::parse(name, json.as_bytes(), None).expect("the bench's manifest parses")
}

/// A node with `busy` and `idle` other apps, and the simulated workers a runtime would run.
struct NodeBench {
    node: Node,
    now: Now,
    workers: BTreeMap<WorkerId, sim::SimWorker>,
    /// Inputs the runtime owes the node (handshakes, heartbeats, binds).
    pending: Vec<Input>,
}

impl NodeBench {
    fn new(idle: usize) -> Self {
        let start = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut bench = NodeBench {
            node: Node::new(NodeConfig::default()),
            now: Now::new(start, wall),
            workers: BTreeMap::new(),
            pending: Vec::new(),
        };
        for i in 0..idle {
            bench.input(Input::Deploy {
                manifest: Box::new(manifest(&format!("idle{i}"), 86_400_000, 0)),
                origin: AppOrigin::CommandLine,
            });
        }
        bench.input(Input::Deploy {
            manifest: Box::new(manifest(BUSY, STEP.as_millis() as u64, 1)),
            origin: AppOrigin::CommandLine,
        });
        assert_eq!(bench.workers.len(), 1, "only busy has a worker");
        bench
    }

    /// Takes in `input` and carries out what follows, as a runtime would.
    fn input(&mut self, input: Input) {
        self.pending.push(input);
        while !self.pending.is_empty() {
            for input in std::mem::take(&mut self.pending) {
                self.node.handle_input(self.now, input);
            }
            while let Some(output) = self.node.poll_output() {
                self.react(output);
            }
        }
    }

    fn react(&mut self, output: Output) {
        match output {
            Output::Bind { endpoint, .. } => self.pending.push(Input::Bound {
                endpoint,
                result: Ok(()),
            }),
            Output::Spawn(spec) => {
                let script = Script {
                    handshake: true,
                    answer: Answer::Manual,
                    obey: true,
                    heartbeat: true,
                };
                let mut worker = sim::SimWorker::new(spec.worker, script);
                if let Some(hello) = worker.greet() {
                    self.pending.push(worker_data(spec.worker, &[hello]));
                }
                self.workers.insert(spec.worker, worker);
            }
            Output::ToWorker { worker, bytes } => {
                let Some(w) = self.workers.get_mut(&worker) else {
                    return;
                };
                w.receive(&bytes).expect("the node speaks the protocol");
                if let Some(beat) = w.beat() {
                    self.pending.push(worker_data(worker, &[beat]));
                }
            }
            _ => {}
        }
    }

    /// Moves time one step: `busy`'s timer fires and its job reaches the worker. Returns the
    /// worker's reply to it.
    fn next_job(&mut self) -> Input {
        self.now = self.now + STEP;
        self.input(Input::Tick);
        let (id, worker) = (self.workers.iter_mut())
            .find(|(_, w)| w.jobs.values().any(|j| j.ended))
            .expect("busy's timer made a job");
        let sid = *worker.jobs.keys().next().expect("a job");
        let reply = [
            WorkerMessage::Chunk {
                sid,
                data: Bytes::from_static(b"done"),
            },
            WorkerMessage::Choke { sid },
        ];
        worker.said(&reply[1]);
        worker_data(*id, &reply)
    }
}

fn worker_data(worker: WorkerId, messages: &[WorkerMessage]) -> Input {
    Input::WorkerData {
        worker,
        bytes: sim::encode(messages),
    }
}

/// The measured part: the reply in, its outputs out. Returns how many outputs it made.
#[inline(never)]
fn reply_step(node: &mut Node, now: Now, reply: Input) -> usize {
    node.handle_input(now, reply);
    let mut outputs = 0;
    while let Some(output) = node.poll_output() {
        black_box(&output);
        outputs += 1;
    }
    outputs
}

/// `steps` replies, the time spent in [`reply_step`] alone.
fn timed_steps(bench: &mut NodeBench, steps: u64) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..steps {
        let reply = bench.next_job();
        let started = Instant::now();
        black_box(reply_step(&mut bench.node, bench.now, reply));
        spent += started.elapsed();
    }
    spent
}

fn criterion_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("node/reply");
    for idle in IDLE {
        let mut bench = NodeBench::new(idle);
        group.bench_with_input(BenchmarkId::new("idle_apps", idle), &idle, |b, _| {
            b.iter_custom(|steps| timed_steps(&mut bench, steps))
        });
    }
    group.finish();
}

/// Best time per step over a few rounds, for each count of idle apps, and its ratio to 1.
fn summary(round: Duration) {
    let mut benches: Vec<(usize, NodeBench)> =
        IDLE.iter().map(|&n| (n, NodeBench::new(n))).collect();
    let mut best = vec![f64::MAX; IDLE.len()];
    for _ in 0..3 {
        for (i, (_, bench)) in benches.iter_mut().enumerate() {
            let (mut steps, mut spent) = (0u64, Duration::ZERO);
            let started = Instant::now();
            while started.elapsed() < round {
                spent += timed_steps(bench, 100);
                steps += 100;
            }
            best[i] = best[i].min(spent.as_nanos() as f64 / steps as f64);
        }
    }
    println!();
    for (i, (idle, _)) in benches.iter().enumerate() {
        println!(
            "node reply beside {idle:>4} idle apps: {:>8.0} ns/reply, {:.2}x the cost beside 1",
            best[i],
            best[i] / best[0]
        );
    }
}

/// `NODE_APPS_STEPS=IDLE:STEPS`, for an instruction count of the measured part.
fn steps_only(spec: &str) {
    let parsed = spec
        .split_once(':')
        .and_then(|(idle, steps)| Some((idle.parse().ok()?, steps.parse().ok()?)));
    let Some((idle, steps)) = parsed else {
        panic!("NODE_APPS_STEPS={spec:?}: want IDLE:STEPS, two numbers");
    };
    let mut bench = NodeBench::new(idle);
    let spent = timed_steps(&mut bench, steps);
    println!("{steps} replies beside {idle} idle apps: {spent:?}");
}

fn main() {
    if let Ok(spec) = std::env::var("NODE_APPS_STEPS") {
        steps_only(&spec);
        return;
    }
    support::run_with_summary(criterion_benches, summary);
}
