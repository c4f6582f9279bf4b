//! `cocaine bench echo`: pipelined native calls through a real node with a Rust echo worker,
//! against two baselines measured in the same run with the same clients:
//! - a ROUTER echo over libzmq that decodes each request and answers with the same two reply
//!   messages the node sends (what the node costs on top of ZeroMQ and the codec);
//! - a bare ROUTER that sends every message back as it came, no msgpack at all (what the
//!   node costs on top of ZeroMQ alone).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use cocaine_core::codec::native::{self, NativeMessage};

use super::load::{self, Figures, Load, Protocol};

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

pub fn run(args: &EchoArgs) -> Result<(), String> {
    let workers = args
        .workers
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
    let load = Load {
        protocol: Protocol::Native,
        event: String::new(),
        clients: args.clients.max(1),
        depth: args.depth.max(1),
        size: args.size,
        duration: Duration::from_secs_f64(args.seconds.max(0.1)),
        progress: false,
        signer: None,
        session: false,
        seal: None,
    };

    let baseline = load::run(&start_baseline(Reply::Decoded)?, &load, || {})?;
    let bare = load::run(&start_baseline(Reply::Bare)?, &load, || {})?;

    let mut node = NodeUnderTest::start(args.runtime, workers, args.concurrency.max(1))?;
    let measured = load::run(&node.endpoint, &load, || {});
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
    report(args, workers, &measured, &baseline, &bare);
    Ok(())
}

fn report(args: &EchoArgs, workers: usize, measured: &Figures, baseline: &Figures, bare: &Figures) {
    let ratio = |b: &Figures| measured.rps() / b.rps().max(f64::MIN_POSITIVE);
    println!(
        "node ({:?}, {workers} workers): {:.0} calls/s, p50 {} us, p99 {} us, {} failed",
        args.runtime,
        measured.rps(),
        measured.us(0.5),
        measured.us(0.99),
        measured.failed
    );
    for (name, b) in [
        ("ROUTER echo", baseline),
        ("bare libzmq echo, no msgpack", bare),
    ] {
        println!(
            "baseline ({name}): {:.0} calls/s, p50 {} us, p99 {} us",
            b.rps(),
            b.us(0.5),
            b.us(0.99)
        );
    }
    println!(
        "ratio (node / baseline throughput): {:.3}; node / bare libzmq: {:.3}",
        ratio(baseline),
        ratio(bare)
    );
    if args.json {
        println!(
            "{{\"runtime\":\"{:?}\",\"clients\":{},\"depth\":{},\"size\":{},\"seconds\":{},\"workers\":{workers},\
             \"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"failed\":{},\
             \"baseline_rps\":{:.1},\"baseline_p50_us\":{},\"baseline_p99_us\":{},\"ratio\":{:.4},\
             \"bare_rps\":{:.1},\"bare_p50_us\":{},\"bare_p99_us\":{},\"bare_ratio\":{:.4}}}",
            args.runtime,
            args.clients,
            args.depth,
            args.size,
            args.seconds,
            measured.rps(),
            measured.us(0.5),
            measured.us(0.99),
            measured.failed,
            baseline.rps(),
            baseline.us(0.5),
            baseline.us(0.99),
            ratio(baseline),
            bare.rps(),
            bare.us(0.5),
            bare.us(0.99),
            ratio(bare),
        );
    }
}

/// How a baseline server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// Decodes the request and encodes `[4, sid, data]`, `[5, sid]`, as the node does.
    Decoded,
    /// Sends every message back as it came: no msgpack on the server side. The client sees
    /// its own `[5, sid]` come back, which ends the call for it just the same.
    Bare,
}

/// A ROUTER on a free port answering as `reply` says, with no engine and no worker in
/// between; returns its endpoint.
fn start_baseline(reply: Reply) -> Result<String, String> {
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
            if reply == Reply::Bare {
                if socket.send_multipart(frames, 0).is_err() {
                    return;
                }
                continue;
            }
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
        // `inline`: the echo handlers are tiny, so the workers run them on the thread that
        // reads the channel (see `cocaine_worker::Worker::inline`).
        let json = format!(
            r#"{{"type": "binary", "args": "local://{}",
                "engine": {{"pool-limit": {workers}, "pool-min": {workers}, "queue-limit": 100000,
                            "concurrency": {concurrency}, "inline": true}},
                "tasks": {{"echo": {{"type": "native-server", "endpoint": "{endpoint}"}}}}}}"#,
            worker.display()
        );
        std::fs::write(&manifest, json).map_err(|e| e.to_string())?;
        let runtime = format!("{runtime:?}").to_lowercase();
        let mut child = Command::new(&exe)
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
        let load = Load {
            protocol: Protocol::Native,
            event: String::new(),
            clients: 1,
            depth: 1,
            size: 0,
            duration: Duration::ZERO,
            progress: false,
            signer: None,
            session: false,
            seal: None,
        };
        for sid in 1..=(workers as u64 * 4) {
            load::send_call(&socket, &load, sid, b"warm-up")?;
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
