//! The discrete-event model: nodes with a pool of workers and a bounded queue, clients that
//! choose a node for each request, and announcements that tell clients each node's load
//! once per interval. Time is in microseconds; events at the same instant run in the order
//! they were scheduled, so a run is a pure function of its configuration and seed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::rng::Rng;
use super::{Outcome, SimConfig, Strategy};
use crate::cluster::balance::{
    client_score, power_of_two, random_pick, Health, Load, RoundRobin, Score,
};

/// Attempts a client makes for one request under a load-aware strategy: the first and two
/// retries elsewhere after a 503 (a 503 job never started, so retrying is safe).
const ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A client has a new request.
    Arrival,
    /// A worker of this node finished the request of this client.
    Done { node: usize, client: usize },
    /// This node announces its load.
    Announce { node: usize },
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    since: u64,
    client: usize,
    measured: bool,
}

#[derive(Debug)]
struct SimNode {
    /// Mean service time here, in microseconds.
    mean_service: f64,
    busy: u64,
    queue: VecDeque<Waiting>,
    /// What this node said in its last announcement, and which one it was.
    announced: Load,
    announcements: u64,
}

/// What one client knows beyond the announcements: for each node, how many of its own
/// requests it started there minus how many finished, since that node's last announcement.
#[derive(Debug, Clone)]
struct ClientView {
    since: Vec<(u64, i64)>,
    /// This client's requests at each node now.
    in_flight: Vec<u64>,
    round_robin: RoundRobin,
}

impl ClientView {
    fn delta(&mut self, node: usize, announcement: u64) -> &mut i64 {
        let entry = &mut self.since[node];
        if entry.0 != announcement {
            *entry = (announcement, 0);
        }
        &mut entry.1
    }
}

pub(super) struct Model<'a> {
    config: &'a SimConfig,
    strategy: Strategy,
    rng: Rng,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    nodes: Vec<SimNode>,
    clients: Vec<ClientView>,
    candidates: Vec<usize>,
    pool_limit: u64,
    queue_limit: u64,
    pub(super) outcome: Outcome,
}

impl<'a> Model<'a> {
    pub(super) fn new(config: &'a SimConfig, strategy: Strategy) -> Model<'a> {
        let mut rng = Rng::new(config.seed);
        let nodes = (0..config.nodes)
            .map(|i| SimNode {
                mean_service: config.mean_service_ms * 1000.0 * config.slowness(i),
                busy: 0,
                queue: VecDeque::new(),
                announced: Load::default(),
                announcements: 0,
            })
            .collect();
        let clients = (0..config.clients)
            .map(|_| ClientView {
                since: vec![(0, 0); config.nodes],
                in_flight: vec![0; config.nodes],
                round_robin: RoundRobin::default(),
            })
            .collect();
        let mut model = Model {
            config,
            strategy,
            rng: Rng::new(0),
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            nodes,
            clients,
            candidates: (0..config.nodes).collect(),
            pool_limit: config.workers,
            queue_limit: config.queue_limit,
            outcome: Outcome::default(),
        };
        model.start(&mut rng);
        model.rng = rng;
        model
    }

    /// Staggers the announcements over one interval, starts each client's round-robin at a
    /// different node (as DEALERs whose connections came up in different orders), and
    /// schedules the first request.
    fn start(&mut self, rng: &mut Rng) {
        let interval = self.config.announce_interval_ms * 1000.0;
        for node in 0..self.nodes.len() {
            self.announce(node);
            let phase = (rng.unit() * interval) as u64;
            self.schedule(phase, Event::Announce { node });
        }
        for client in &mut self.clients {
            for _ in 0..rng.below(self.nodes.len()) {
                client.round_robin.pick(self.nodes.len());
            }
        }
        let gap = rng.exponential(self.mean_arrival_gap());
        self.schedule(gap as u64, Event::Arrival);
    }

    /// Runs until the configured duration has passed.
    pub(super) fn run(&mut self) {
        let end = (self.config.duration_ms * 1000.0) as u64;
        while let Some(Reverse((at, _, event))) = self.events.pop() {
            if at > end {
                break;
            }
            self.now = at;
            match event {
                Event::Arrival => self.arrival(),
                Event::Done { node, client } => self.done(node, client),
                Event::Announce { node } => {
                    self.announce(node);
                    let interval = self.config.announce_interval_ms * 1000.0;
                    self.schedule(self.now + interval as u64, Event::Announce { node });
                }
            }
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    /// Microseconds between two requests from all clients together, for the configured
    /// utilisation of the cluster's total capacity.
    fn mean_arrival_gap(&self) -> f64 {
        let capacity_per_us: f64 = self
            .nodes
            .iter()
            .map(|n| self.pool_limit as f64 / n.mean_service)
            .sum();
        1.0 / (capacity_per_us * self.config.utilisation)
    }

    fn announce(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.announced = Load {
            queue: n.queue.len() as u64,
            busy: n.busy,
            workers: self.pool_limit,
            pool_limit: self.pool_limit,
            queue_limit: self.queue_limit,
            health: Health::Running,
        };
        n.announcements += 1;
    }

    fn arrival(&mut self) {
        let gap = self.rng.exponential(self.mean_arrival_gap());
        self.schedule(self.now + gap.max(1.0) as u64, Event::Arrival);
        let client = self.rng.below(self.clients.len());
        let measured = self.now as f64 >= self.config.warmup_ms * 1000.0;
        self.outcome.arrivals += 1;
        if measured {
            self.outcome.measured += 1;
        }
        let attempts = if self.strategy.retries() { ATTEMPTS } else { 1 };
        let mut tried: Vec<usize> = Vec::with_capacity(attempts);
        for attempt in 0..attempts {
            let Some(node) = self.choose(client, &tried) else {
                break;
            };
            if measured && attempt > 0 {
                self.outcome.retries += 1;
            }
            if self.admit(node, client, measured) {
                self.outcome.admitted += 1;
                return;
            }
            tried.push(node);
        }
        self.outcome.rejected += 1;
        if measured {
            self.outcome.measured_rejected += 1;
        }
    }

    fn choose(&mut self, client: usize, tried: &[usize]) -> Option<usize> {
        let n = self.nodes.len();
        match self.strategy {
            Strategy::RoundRobin => self.clients[client].round_robin.pick(n),
            Strategy::Random => random_pick(n, self.rng.next_u64()),
            Strategy::P2cOwnFirst => {
                let random = self.rng.next_u64();
                let nodes = &self.nodes;
                let view = &self.clients[client];
                let score = |&i: &usize| {
                    if tried.contains(&i) {
                        return None;
                    }
                    client_score(&nodes[i].announced, view.in_flight[i])
                };
                power_of_two(&self.candidates, score, random)
            }
            Strategy::P2c | Strategy::P2cCounted => {
                let random = self.rng.next_u64();
                let counted = self.strategy == Strategy::P2cCounted;
                let nodes = &self.nodes;
                let view = &mut self.clients[client];
                let score = |&i: &usize| -> Option<Score> {
                    if tried.contains(&i) {
                        return None;
                    }
                    let announced = nodes[i].announced;
                    if !counted {
                        return announced.score();
                    }
                    let entry = view.since[i];
                    let delta = if entry.0 == nodes[i].announcements {
                        entry.1
                    } else {
                        0
                    };
                    announced.adjusted(delta).score()
                };
                power_of_two(&self.candidates, score, random)
            }
        }
    }

    /// Offers a request to `node`: a free worker starts it, else it waits in the queue, else
    /// the node answers 503 (`false`).
    fn admit(&mut self, node: usize, client: usize, measured: bool) -> bool {
        let waiting = Waiting {
            since: self.now,
            client,
            measured,
        };
        let n = &mut self.nodes[node];
        if n.busy < self.pool_limit {
            self.start_service(node, waiting);
        } else if (n.queue.len() as u64) < self.queue_limit {
            n.queue.push_back(waiting);
        } else {
            return false;
        }
        let announcement = self.nodes[node].announcements;
        *self.clients[client].delta(node, announcement) += 1;
        self.clients[client].in_flight[node] += 1;
        true
    }

    fn start_service(&mut self, node: usize, waiting: Waiting) {
        if waiting.measured {
            self.outcome.delays_us.push(self.now - waiting.since);
        }
        let n = &mut self.nodes[node];
        n.busy += 1;
        let service = self.rng.exponential(n.mean_service);
        let event = Event::Done {
            node,
            client: waiting.client,
        };
        self.schedule(self.now + service.max(1.0) as u64, event);
    }

    fn done(&mut self, node: usize, client: usize) {
        self.outcome.completed += 1;
        let announcement = self.nodes[node].announcements;
        *self.clients[client].delta(node, announcement) -= 1;
        self.clients[client].in_flight[node] -= 1;
        let n = &mut self.nodes[node];
        n.busy -= 1;
        if let Some(next) = n.queue.pop_front() {
            self.start_service(node, next);
        }
    }

    /// Requests still at the nodes when the run ended (running or queued).
    pub(super) fn in_system(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.busy + n.queue.len() as u64)
            .sum()
    }
}
