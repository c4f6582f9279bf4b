//! `cocaine bench echo`: pipelined native calls through a real node with a Rust echo worker,
//! against a baseline measured in the same run: a plain ROUTER echo over libzmq that answers
//! each request with the same two reply messages the node sends. The ratio says what the
//! node costs on top of ZeroMQ itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use cocaine_core::codec::native::{self, NativeMessage};
use cocaine_core::stats::Histogram;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchKind,
}

#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Echo calls through a node, and the same load against a bare ROUTER echo.
    Echo(EchoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    #[arg(long, value_enum, default_value = "mio")]
    runtime: crate::node::Runtime,
    /// Client connections (one thread each).
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Requests each client keeps in flight.
    #[arg(long, default_value_t = 64)]
    depth: usize,
    /// Request body size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// How long each measurement lasts.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Echo workers (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Jobs each worker may run at once (the engine's `concurrency`); the default lets a
    /// worker hold every request one client has in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// What one measurement found.
#[derive(Debug, Clone)]
struct Figures {
    completed: u64,
    failed: u64,
    first_failure: Option<String>,
    elapsed: Duration,
    latency: Histogram,
}

impl Figures {
    fn rps(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn run(args: BenchArgs) -> ExitCode {
    let BenchKind::Echo(echo) = args.what;
    match bench_echo(&echo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cocaine bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_echo(args: &EchoArgs) -> Result<(), String> {
    let workers = args
        .workers
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
    let duration = Duration::from_secs_f64(args.seconds.max(0.1));

    let baseline_endpoint = start_baseline()?;
    let baseline = load(&baseline_endpoint, args, duration)?;

    let mut node = NodeUnderTest::start(args.runtime, workers, args.concurrency.max(1))?;
    let measured = load(&node.endpoint, args, duration);
    node.stop();
    let measured = measured?;
    if let Some(failure) = &measured.first_failure {
        // A benchmark of errors measures nothing: say so rather than print a figure.
        if measured.failed * 100 > measured.completed {
            return Err(format!(
                "{} of {} calls failed, e.g.: {failure}",
                measured.failed, measured.completed
            ));
        }
        eprintln!(
            "cocaine bench: {} calls failed, e.g.: {failure}",
            measured.failed
        );
    }

    let ratio = measured.rps() / baseline.rps().max(f64::MIN_POSITIVE);
    let us = |h: &Histogram, q: f64| h.quantile(q).as_micros() as u64;
    println!(
        "node ({:?}, {workers} workers): {:.0} calls/s, p50 {} us, p99 {} us, {} failed",
        args.runtime,
        measured.rps(),
        us(&measured.latency, 0.5),
        us(&measured.latency, 0.99),
        measured.failed
    );
    println!(
        "baseline (ROUTER echo): {:.0} calls/s, p50 {} us, p99 {} us",
        baseline.rps(),
        us(&baseline.latency, 0.5),
        us(&baseline.latency, 0.99)
    );
    println!("ratio (node / baseline throughput): {ratio:.3}");
    if args.json {
        println!(
            "{{\"runtime\":\"{:?}\",\"clients\":{},\"depth\":{},\"size\":{},\"seconds\":{},\"workers\":{workers},\
             \"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"failed\":{},\
             \"baseline_rps\":{:.1},\"baseline_p50_us\":{},\"baseline_p99_us\":{},\"ratio\":{ratio:.4}}}",
            args.runtime,
            args.clients,
            args.depth,
            args.size,
            args.seconds,
            measured.rps(),
            us(&measured.latency, 0.5),
            us(&measured.latency, 0.99),
            measured.failed,
            baseline.rps(),
            us(&baseline.latency, 0.5),
            us(&baseline.latency, 0.99),
        );
    }
    Ok(())
}

/// A ROUTER that answers `[3]`,`[4]`,`[5]` with `[4, sid, data]` and `[5, sid]`, as the node
/// does, with no engine and no worker in between.
fn start_baseline() -> Result<String, String> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::ROUTER).map_err(|e| e.to_string())?;
    socket
        .bind("tcp://127.0.0.1:*")
        .map_err(|e| e.to_string())?;
    let endpoint = socket
        .get_last_endpoint()
        .map_err(|e| e.to_string())?
        .map_err(|_| "endpoint")?;
    thread::spawn(move || {
        let _context = context;
        while let Ok(frames) = socket.recv_multipart(0) {
            let Some((identity, messages)) = frames.split_first() else {
                continue;
            };
            let mut data = Bytes::new();
            let mut sid = 0;
            for m in messages {
                match NativeMessage::decode(m, usize::MAX) {
                    Ok(NativeMessage::Open { sid: s, .. }) => sid = s,
                    Ok(NativeMessage::Chunk { data: d, .. }) => data = d,
                    Ok(NativeMessage::Choke { .. }) => {
                        let reply = [identity.clone(), native::encode_chunk(sid, &data).to_vec()];
                        let end = [identity.clone(), native::encode_choke(sid).to_vec()];
                        if socket.send_multipart(reply, 0).is_err()
                            || socket.send_multipart(end, 0).is_err()
                        {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    Ok(endpoint)
}

/// A node on a free port with one echo app of `workers` Rust workers.
struct NodeUnderTest {
    child: Child,
    endpoint: String,
    _dir: TempDir,
}

impl NodeUnderTest {
    fn start(
        runtime: crate::node::Runtime,
        workers: usize,
        concurrency: usize,
    ) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let worker = exe.with_file_name("cocaine-echo-worker");
        if !worker.is_file() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p cocaine-worker`",
                worker.display()
            ));
        }
        let port = free_port()?;
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let dir = TempDir::new()?;
        let manifest = dir.path().join("bench.json");
        let json = format!(
            r#"{{"type": "binary", "args": "local://{}",
                "engine": {{"pool-limit": {workers}, "pool-min": {workers}, "queue-limit": 100000,
                            "concurrency": {concurrency}}},
                "tasks": {{"echo": {{"type": "native-server", "endpoint": "{endpoint}"}}}}}}"#,
            worker.display()
        );
        std::fs::write(&manifest, json).map_err(|e| e.to_string())?;
        let runtime = format!("{runtime:?}").to_lowercase();
        let mut child = Command::new(&exe)
            // The echo workers inherit it: their handlers are tiny, so they run inline on the
            // thread that reads the channel (see `cocaine_worker::Worker::inline`).
            .env("COCAINE_INLINE", "1")
            .args(["node", "--log-level", "info", "--runtime", &runtime])
            // Neither the default control port nor the user's store: a bench touches no
            // state and may run beside a node.
            .args(["--control", "none", "--store"])
            .arg(dir.path().join("store"))
            .arg(&manifest)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the node: {e}"))?;
        // Wait for the node's own word that it is up, and for every worker's handshake.
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut up = false;
        for line in lines.by_ref() {
            let line = line.map_err(|e| e.to_string())?;
            if line.contains("cannot start") || line.contains("ERROR") {
                let _ = child.kill();
                return Err(format!("the node failed: {line}"));
            }
            if line.contains("node is up") {
                up = true;
                break;
            }
        }
        if !up {
            return Err("the node exited before it was up".to_owned());
        }
        // Keep draining stderr so the node never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        let node = Self {
            child,
            endpoint,
            _dir: dir,
        };
        node.warm_up(workers)?;
        Ok(node)
    }

    /// Calls until every worker has answered once (the pool starts at `pool-min`).
    fn warm_up(&self, workers: usize) -> Result<(), String> {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
        socket.set_rcvtimeo(10_000).map_err(|e| e.to_string())?;
        socket.connect(&self.endpoint).map_err(|e| e.to_string())?;
        for sid in 1..=(workers as u64 * 4) {
            send_call(&socket, sid, b"warm-up")?;
        }
        let mut ended = 0;
        while ended < workers * 4 {
            let frames = socket
                .recv_multipart(0)
                .map_err(|e| format!("warm-up: {e}"))?;
            for f in frames {
                if let Ok(NativeMessage::Choke { .. } | NativeMessage::Error { .. }) =
                    NativeMessage::decode(&f, usize::MAX)
                {
                    ended += 1;
                }
            }
        }
        Ok(())
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Runs `clients` pipelined clients against `endpoint` for `duration`.
fn load(endpoint: &str, args: &EchoArgs, duration: Duration) -> Result<Figures, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..args.clients.max(1) {
        let endpoint = endpoint.to_owned();
        let stop = stop.clone();
        let (depth, size) = (args.depth.max(1), args.size);
        threads.push(thread::spawn(move || client(&endpoint, depth, size, &stop)));
    }
    let started = Instant::now();
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Figures {
        completed: 0,
        failed: 0,
        first_failure: None,
        elapsed: started.elapsed(),
        latency: Histogram::new(),
    };
    for t in threads {
        let f = t.join().map_err(|_| "a client thread panicked")??;
        total.completed += f.completed;
        total.failed += f.failed;
        total.first_failure = total.first_failure.or(f.first_failure);
        total.latency.merge(&f.latency);
    }
    Ok(total)
}

fn send_call(socket: &zmq::Socket, sid: u64, body: &[u8]) -> Result<(), String> {
    let open = native::encode_open(sid, "", &native::Policy::default(), None);
    let chunk = native::encode_chunk(sid, body);
    let end = native::encode_choke(sid);
    socket
        .send_multipart([&open[..], &chunk[..], &end[..]], 0)
        .map_err(|e| e.to_string())
}

fn client(endpoint: &str, depth: usize, size: usize, stop: &AtomicBool) -> Result<Figures, String> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
    socket.set_rcvtimeo(10_000).map_err(|e| e.to_string())?;
    socket.connect(endpoint).map_err(|e| e.to_string())?;
    let body = vec![b'x'; size];
    let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(depth * 2);
    let mut next_sid = 1u64;
    let mut in_flight = 0;
    let mut figures = Figures {
        completed: 0,
        failed: 0,
        first_failure: None,
        elapsed: Duration::ZERO,
        latency: Histogram::new(),
    };
    while in_flight < depth {
        sent_at.insert(next_sid, Instant::now());
        send_call(&socket, next_sid, &body)?;
        next_sid += 1;
        in_flight += 1;
    }
    loop {
        let frames = socket
            .recv_multipart(0)
            .map_err(|e| format!("no reply within 10 s: {e}"))?;
        for f in frames {
            let sid = match NativeMessage::decode(&f, usize::MAX) {
                Ok(NativeMessage::Choke { sid }) => sid,
                Ok(NativeMessage::Error { sid, code, message }) => {
                    figures.failed += 1;
                    figures
                        .first_failure
                        .get_or_insert_with(|| format!("{code} {message}"));
                    sid
                }
                _ => continue,
            };
            in_flight -= 1;
            figures.completed += 1;
            if let Some(at) = sent_at.remove(&sid) {
                figures.latency.record(at.elapsed());
            }
            if !stop.load(Ordering::Relaxed) {
                sent_at.insert(next_sid, Instant::now());
                send_call(&socket, next_sid, &body)?;
                next_sid += 1;
                in_flight += 1;
            }
        }
        if in_flight == 0 {
            return Ok(figures);
        }
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("cocaine-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
