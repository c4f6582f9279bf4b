//! A pure simulation of balancing at scale: hundreds or thousands of nodes, some of them
//! slower, clients that see each node's load only as of its last announcement, and the
//! choice strategies of [`crate::cluster::balance`] against the round-robin and random
//! baselines. No sockets, no clock, no threads: a seeded discrete-event model, so the same
//! configuration gives the same numbers on every run (the `balance_sim` example prints the
//! table in docs/cluster.md).

mod model;
mod rng;

pub use rng::Rng;

/// How a client picks the node for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// In turn, blind to load (what a ZeroMQ DEALER connected to every node does).
    RoundRobin,
    /// Uniformly at random, blind to load.
    Random,
    /// Power of two choices on the announced load; a 503 is retried elsewhere.
    P2c,
    /// Power of two choices on the announced load corrected by the client's own requests
    /// started and finished there since that announcement; a 503 is retried elsewhere.
    P2cCounted,
    /// Power of two choices on the client's own requests in flight at each node, then the
    /// announced load ([`crate::cluster::balance::client_score`]): what the clients do.
    P2cOwnFirst,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::RoundRobin,
        Strategy::Random,
        Strategy::P2c,
        Strategy::P2cCounted,
        Strategy::P2cOwnFirst,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
            Strategy::P2c => "p2c on announced load",
            Strategy::P2cCounted => "p2c on announced load + own count",
            Strategy::P2cOwnFirst => "p2c on own requests in flight, then announced load",
        }
    }

    /// Whether the client retries a 503 at another node (the blind baselines do not: a
    /// ZeroMQ DEALER has no notion of it).
    fn retries(self) -> bool {
        !matches!(self, Strategy::RoundRobin | Strategy::Random)
    }
}

/// One simulated cluster and its traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub nodes: usize,
    pub clients: usize,
    /// Workers per node (each node's `pool-limit`, all started).
    pub workers: u64,
    /// Requests that may wait at a node; one more is a 503.
    pub queue_limit: u64,
    /// Mean service time on a normal node; service times are exponential.
    pub mean_service_ms: f64,
    /// One node in `slow_every` is `slow_factor` times slower.
    pub slow_every: usize,
    pub slow_factor: f64,
    /// Offered load as a share of the cluster's total capacity.
    pub utilisation: f64,
    /// How often each node announces its load; clients see the last announcement, so their
    /// view is up to one interval old.
    pub announce_interval_ms: f64,
    pub duration_ms: f64,
    /// Requests that arrive before this are served but not measured.
    pub warmup_ms: f64,
    pub seed: u64,
}

impl SimConfig {
    /// The table's cluster: `nodes` nodes of 4 workers, a 10 ms mean service time, one node
    /// in five four times slower, 80% of capacity offered, announcements every second (the
    /// node's default), a tenth of a client per node.
    pub fn table(nodes: usize) -> SimConfig {
        SimConfig {
            nodes,
            clients: (nodes / 10).max(1),
            workers: 4,
            queue_limit: 100,
            mean_service_ms: 10.0,
            slow_every: 5,
            slow_factor: 4.0,
            utilisation: 0.8,
            announce_interval_ms: 1000.0,
            duration_ms: 20_000.0,
            warmup_ms: 5_000.0,
            seed: 1,
        }
    }

    /// How much slower than normal node `i` is.
    fn slowness(&self, i: usize) -> f64 {
        if self.slow_every > 0 && i % self.slow_every == self.slow_every - 1 {
            self.slow_factor
        } else {
            1.0
        }
    }
}

/// What a run counted. `arrivals`, `admitted`, `rejected` and `completed` cover the whole
/// run; the rest only requests that arrived after the warm-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub arrivals: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub completed: u64,
    /// Requests still running or queued when the run ended.
    pub in_system: u64,
    pub measured: u64,
    pub measured_rejected: u64,
    /// Attempts after a 503, for measured requests.
    pub retries: u64,
    /// Each measured request's time in a queue before a worker took it, in microseconds,
    /// sorted.
    pub delays_us: Vec<u64>,
}

impl Outcome {
    /// The `p`-th percentile (0 to 100) of the queueing delay in milliseconds; 0 with no
    /// samples.
    pub fn delay_ms(&self, p: f64) -> f64 {
        if self.delays_us.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (self.delays_us.len() - 1) as f64).round() as usize;
        self.delays_us[rank] as f64 / 1000.0
    }

    /// Measured requests answered 503 after every attempt, as a share.
    pub fn rejected_share(&self) -> f64 {
        if self.measured == 0 {
            return 0.0;
        }
        self.measured_rejected as f64 / self.measured as f64
    }
}

/// Runs one configuration with one strategy.
pub fn run(config: &SimConfig, strategy: Strategy) -> Outcome {
    let mut model = model::Model::new(config, strategy);
    model.run();
    let in_system = model.in_system();
    let mut outcome = model.outcome;
    outcome.in_system = in_system;
    outcome.delays_us.sort_unstable();
    outcome
}

/// The markdown table of every strategy on each configuration.
pub fn table(configs: &[SimConfig]) -> String {
    let mut out = String::from(
        "| nodes | mean service (ms) | strategy | p50 queueing (ms) | p99 queueing (ms) | 503 after retries | retries per request |\n\
         |---:|---:|---|---:|---:|---:|---:|\n",
    );
    for config in configs {
        for strategy in Strategy::ALL {
            let o = run(config, strategy);
            out.push_str(&format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2}% | {:.3} |\n",
                config.nodes,
                config.mean_service_ms,
                strategy.name(),
                o.delay_ms(50.0),
                o.delay_ms(99.0),
                100.0 * o.rejected_share(),
                o.retries as f64 / o.measured.max(1) as f64,
            ));
        }
    }
    out
}
