//! `cocaine bench balance`: the same fixed-rate load sent to every node that runs an app,
//! first as ZeroMQ spreads it (one DEALER connected to all of them: round-robin), then as a
//! cluster client chooses (power of two choices on announced load and its own requests in
//! flight, a 503 retried at another node). Prints each one's latency percentiles, its 503s,
//! and the p99 ratio (docs/cluster.md).
//!
//! The load is open-loop: request `i` is due at `start + i / rate` whatever the answers do,
//! and its latency counts from then, so a node that falls behind shows in the figures
//! instead of slowing the load down.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use cocaine_client::ClusterClient;
use cocaine_core::cluster::balance::{client_score, power_of_two, Load};
use cocaine_core::codec::native::{self, NativeMessage, Policy};

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The app to load; it must run on two nodes or more.
    app: String,
    /// Any node of the cluster (its control endpoint).
    #[arg(long, default_value = "tcp://127.0.0.1:5000")]
    node: String,
    /// The native-server task to call.
    #[arg(long)]
    task: String,
    /// The event to open [default: the task's own name].
    #[arg(long, default_value = "")]
    event: String,
    /// Each request's body.
    #[arg(long, default_value = "")]
    body: String,
    /// Requests per second, for each of the two runs.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds of load in each run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds to let the nodes drain between the two runs.
    #[arg(long, default_value_t = 5.0)]
    pause: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RoundRobin,
    LoadAware,
}

/// What one run measured.
struct Figures {
    latencies: Vec<Duration>,
    rejected: u64,
    failed: u64,
    lost: u64,
    retries: u64,
    sent: u64,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank]
    }
}

pub fn run(args: &BalanceArgs) -> Result<(), String> {
    let mut cluster =
        ClusterClient::connect(std::slice::from_ref(&args.node), &args.app, &args.task)
            .map_err(|e| e.to_string())?;
    let endpoints: Vec<String> = cluster.nodes().iter().map(|n| n.endpoint.clone()).collect();
    if endpoints.len() < 2 {
        return Err(format!(
            "{} runs on {} node(s) known to {}: balancing needs two or more",
            args.app,
            endpoints.len(),
            args.node
        ));
    }
    eprintln!(
        "loading {} at {} requests/s for {} s, over {}",
        args.app,
        args.rate,
        args.seconds,
        endpoints.join(", ")
    );
    let round_robin = run_once(args, Mode::RoundRobin, &endpoints, &mut cluster)?;
    std::thread::sleep(Duration::from_secs_f64(args.pause));
    let load_aware = run_once(args, Mode::LoadAware, &endpoints, &mut cluster)?;
    print_table(&round_robin, &load_aware);
    Ok(())
}

fn print_table(round_robin: &Figures, load_aware: &Figures) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| choice | sent | p50 (ms) | p99 (ms) | 503 | other errors | no answer | retries |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, f) in [
        ("ZeroMQ round-robin", round_robin),
        ("p2c on load (cluster client)", load_aware),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
            f.sent,
            ms(f.percentile(50.0)),
            ms(f.percentile(99.0)),
            f.rejected,
            f.failed,
            f.lost,
            f.retries
        );
    }
    let rr = ms(round_robin.percentile(99.0));
    if rr > 0.0 {
        println!(
            "\np99 load-aware / round-robin: {:.2}",
            ms(load_aware.percentile(99.0)) / rr
        );
    }
}

/// A request in flight: when it was due, where it went.
struct Open {
    due: Instant,
    node: usize,
    tried: Vec<usize>,
}

struct Runner<'a> {
    args: &'a BalanceArgs,
    mode: Mode,
    sockets: Vec<zmq::Socket>,
    /// Each node's announced load (load-aware only) and our requests in flight there.
    loads: Vec<Load>,
    in_flight: Vec<u64>,
    open: HashMap<u64, Open>,
    figures: Figures,
    random: u64,
}

fn run_once(
    args: &BalanceArgs,
    mode: Mode,
    endpoints: &[String],
    cluster: &mut ClusterClient,
) -> Result<Figures, String> {
    let ctx = zmq::Context::new();
    let sockets = match mode {
        Mode::RoundRobin => vec![dealer(&ctx, endpoints)?],
        Mode::LoadAware => endpoints
            .iter()
            .map(|e| dealer(&ctx, std::slice::from_ref(e)))
            .collect::<Result<_, _>>()?,
    };
    let mut runner = Runner {
        args,
        mode,
        sockets,
        loads: vec![Load::default(); endpoints.len()],
        in_flight: vec![0; endpoints.len()],
        open: HashMap::new(),
        figures: Figures {
            latencies: Vec::new(),
            rejected: 0,
            failed: 0,
            lost: 0,
            retries: 0,
            sent: 0,
        },
        random: 0x2545_F491_4F6C_DD1D,
    };
    runner.drive(endpoints, cluster)?;
    runner.figures.latencies.sort_unstable();
    Ok(runner.figures)
}

fn dealer(ctx: &zmq::Context, endpoints: &[String]) -> Result<zmq::Socket, String> {
    let socket = ctx.socket(zmq::DEALER).map_err(|e| e.to_string())?;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.set_sndhwm(100_000).map_err(|e| e.to_string())?;
    socket.set_rcvhwm(100_000).map_err(|e| e.to_string())?;
    for e in endpoints {
        socket.connect(e).map_err(|err| format!("{e}: {err}"))?;
    }
    Ok(socket)
}

impl Runner<'_> {
    fn drive(&mut self, endpoints: &[String], cluster: &mut ClusterClient) -> Result<(), String> {
        let start = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / self.args.rate.max(0.001));
        let total = (self.args.rate * self.args.seconds).round() as u64;
        let mut refreshed: Option<Instant> = None;
        let mut next = 0u64;
        let give_up = start + Duration::from_secs_f64(self.args.seconds) + Duration::from_secs(30);
        while (next < total || !self.open.is_empty()) && Instant::now() < give_up {
            if self.mode == Mode::LoadAware
                && refreshed.is_none_or(|r| r.elapsed() >= Duration::from_secs(1))
            {
                self.refresh(endpoints, cluster);
                refreshed = Some(Instant::now());
            }
            let now = Instant::now();
            while next < total && start + gap.mul_f64(next as f64) <= now {
                let due = start + gap.mul_f64(next as f64);
                self.send(next + 1, due, Vec::new())?;
                next += 1;
            }
            let wait = if next < total {
                (start + gap.mul_f64(next as f64)).saturating_duration_since(Instant::now())
            } else {
                Duration::from_millis(50)
            };
            self.receive(wait)?;
        }
        self.figures.lost = self.open.len() as u64;
        Ok(())
    }

    /// The announced loads, matched to our sockets by endpoint.
    fn refresh(&mut self, endpoints: &[String], cluster: &mut ClusterClient) {
        if cluster.resolve().is_err() {
            return;
        }
        for (i, endpoint) in endpoints.iter().enumerate() {
            self.loads[i] = cluster
                .nodes()
                .iter()
                .find(|n| &n.endpoint == endpoint)
                .map_or(
                    Load {
                        queue_limit: 0,
                        ..Load::default()
                    },
                    |n| n.load,
                );
        }
    }

    fn choose(&mut self, tried: &[usize]) -> Option<usize> {
        if self.mode == Mode::RoundRobin {
            return Some(0);
        }
        self.random = self
            .random
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let nodes: Vec<usize> = (0..self.sockets.len()).collect();
        power_of_two(
            &nodes,
            |&i| {
                if tried.contains(&i) {
                    return None;
                }
                client_score(&self.loads[i], self.in_flight[i])
            },
            self.random >> 11,
        )
    }

    fn send(&mut self, sid: u64, due: Instant, tried: Vec<usize>) -> Result<(), String> {
        let Some(node) = self.choose(&tried) else {
            self.figures.rejected += 1;
            return Ok(());
        };
        let frames = [
            native::encode_open(sid, &self.args.event, &Policy::default(), None).to_vec(),
            native::encode_chunk(sid, self.args.body.as_bytes()).to_vec(),
            native::encode_choke(sid).to_vec(),
        ];
        self.sockets[node]
            .send_multipart(frames, 0)
            .map_err(|e| e.to_string())?;
        if tried.is_empty() {
            self.figures.sent += 1;
        } else {
            self.figures.retries += 1;
        }
        self.in_flight[node] += 1;
        self.open.insert(sid, Open { due, node, tried });
        Ok(())
    }

    fn receive(&mut self, wait: Duration) -> Result<(), String> {
        let mut items: Vec<zmq::PollItem> = self
            .sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        let millis = wait.as_millis().min(1000) as i64;
        zmq::poll(&mut items, millis).map_err(|e| e.to_string())?;
        let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        drop(items);
        for (i, readable) in ready.into_iter().enumerate() {
            if !readable {
                continue;
            }
            while let Ok(frames) = self.sockets[i].recv_multipart(zmq::DONTWAIT) {
                for frame in frames {
                    self.answer(&frame)?;
                }
            }
        }
        Ok(())
    }

    fn answer(&mut self, frame: &[u8]) -> Result<(), String> {
        let message = NativeMessage::decode(frame, usize::MAX).map_err(|e| e.to_string())?;
        let (sid, outcome) = match message {
            NativeMessage::Choke { sid } => (sid, None),
            NativeMessage::Error { sid, code, .. } => (sid, Some(code)),
            _ => return Ok(()),
        };
        let Some(open) = self.open.remove(&sid) else {
            return Ok(());
        };
        self.in_flight[open.node] -= 1;
        match outcome {
            None => self.figures.latencies.push(open.due.elapsed()),
            Some(503) if self.mode == Mode::LoadAware => {
                let mut tried = open.tried;
                tried.push(open.node);
                self.send(sid, open.due, tried)?;
            }
            Some(503) => self.figures.rejected += 1,
            Some(_) => self.figures.failed += 1,
        }
        Ok(())
    }
}
