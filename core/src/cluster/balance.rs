//! Choosing a node for a request by the load the nodes announce (docs/cluster.md, "How
//! balancing chooses").
//!
//! Every node announces, for each app it runs, its queue, busy workers, pool and queue
//! limits and the app's state. From those numbers [`Load::score`] says how long a new
//! request would wait there, or that the node cannot take one at all (its queue is full, the
//! app is broken or stopping). Clients pick by the *power of two choices*
//! ([`power_of_two`]): two nodes drawn at random, the less loaded one wins. It spreads load
//! nearly as well as asking every node, yet a node that looks idle in stale announcements is
//! not flooded by every client at once, as "always the least loaded" would do.
//!
//! A node whose queue is full may hand a request once to its least-loaded peer running the
//! app ([`spillover`]).
//!
//! Round-robin ([`RoundRobin`]) and uniform random ([`random_pick`]) are here as the
//! baselines the simulation and the benchmark compare against: they are what ZeroMQ does.
//!
//! Nothing here draws a random number: the caller passes one in, so a choice is a pure
//! function of its inputs.

use std::cmp::Ordering;

use super::announcement::{AppAnnouncement, AppState};

/// The fixed-point unit of a [`Score`]: a score of `SCALE` means one request waiting (or
/// running) per worker the app may have.
pub const SCALE: u64 = 1 << 16;

/// An app's state as a node announces it, as far as balancing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// Taking requests.
    #[default]
    Running,
    /// Taking requests that wait for its first worker.
    Starting,
    /// Answers requests with errors, or not at all: never chosen.
    Unavailable,
}

impl Health {
    /// The state names nodes announce (`running`, `starting`, `broken`, `stopping`,
    /// `stopped`, `failed`); an unknown name is unavailable, so a newer node's new states are
    /// never chosen by mistake.
    pub fn from_name(name: &str) -> Health {
        match name {
            "running" => Health::Running,
            "starting" => Health::Starting,
            _ => Health::Unavailable,
        }
    }
}

/// What one node announced about one app: the numbers a choice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Requests waiting for a worker.
    pub queue: u64,
    /// Workers running a request.
    pub busy: u64,
    /// Workers that exist.
    pub workers: u64,
    /// The most workers the app may have.
    pub pool_limit: u64,
    /// The most requests that may wait; one more is answered 503.
    pub queue_limit: u64,
    pub health: Health,
}

/// How loaded a node is for an app: lower is better. Requests waiting or running per worker
/// the app may have, in units of [`SCALE`], then the raw queue to break ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Score {
    pub per_worker: u64,
    pub queue: u64,
}

impl From<&AppAnnouncement> for Load {
    /// What a peer's announcement says about one app, as a choice reads it.
    fn from(a: &AppAnnouncement) -> Load {
        Load {
            queue: a.load.queue,
            busy: a.load.busy,
            workers: a.load.workers,
            pool_limit: a.load.pool_limit,
            queue_limit: a.load.queue_limit,
            health: match a.state {
                AppState::Running => Health::Running,
                AppState::Starting => Health::Starting,
                AppState::Broken | AppState::Stopping | AppState::Deleted => Health::Unavailable,
            },
        }
    }
}

impl Load {
    /// How loaded this node is, or `None` when it cannot take a request: its queue is full,
    /// or the app is not running.
    ///
    /// A starting app counts as if every worker it may have were busy: requests there wait
    /// for a worker to start, so a running node with room is better.
    pub fn score(&self) -> Option<Score> {
        if self.health == Health::Unavailable || self.is_full() {
            return None;
        }
        let capacity = self.pool_limit.max(1);
        let busy = match self.health {
            Health::Starting => capacity,
            _ => self.busy,
        };
        let waiting = self.queue.saturating_add(busy);
        Some(Score {
            per_worker: waiting.saturating_mul(SCALE) / capacity,
            queue: self.queue,
        })
    }

    /// Whether one more request would be answered 503.
    pub fn is_full(&self) -> bool {
        self.queue >= self.queue_limit
    }

    /// This load as seen after `delta` more requests (or fewer, when negative) than were
    /// announced: what a client that counts its own requests since the announcement believes.
    /// Extra requests fill free workers first, then the queue.
    pub fn adjusted(&self, delta: i64) -> Load {
        let total = (self.queue + self.busy).saturating_add_signed(delta);
        let busy = total.min(self.pool_limit.max(self.busy));
        Load {
            queue: total - busy,
            busy,
            ..*self
        }
    }
}

/// How loaded a node looks to one client: its own requests in flight there per worker the
/// app may have, then the announced score. The client's own count is fresh where the
/// announcement may be a second old; on its own, a stale announcement makes every client
/// rush to the node that last looked idle (docs/cluster.md has the simulation that shows
/// it). The announcement still decides between nodes the client has equally busy, and
/// excludes nodes that cannot take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientScore {
    pub own_per_worker: u64,
    pub announced: Score,
}

/// The [`ClientScore`] of a node that announced `announced`, where this client has
/// `in_flight` requests open; `None` when the node cannot take one.
pub fn client_score(announced: &Load, in_flight: u64) -> Option<ClientScore> {
    let announced_score = announced.score()?;
    Some(ClientScore {
        own_per_worker: in_flight.saturating_mul(SCALE) / announced.pool_limit.max(1),
        announced: announced_score,
    })
}

/// Power of two choices: draws two different candidates with `random` and returns the index
/// of the less loaded one (the first drawn on a tie). A candidate `load` says is unavailable
/// (`None`) loses to any available one; if both drawn are unavailable, the least loaded
/// available candidate is taken, so a request goes wherever it can. `None` when no candidate
/// is available.
///
/// `random` should be uniform over `u64`; the two draws are taken from it (the bias of `%`
/// is negligible for any realistic number of nodes).
pub fn power_of_two<T, S: Ord>(
    candidates: &[T],
    load: impl Fn(&T) -> Option<S>,
    random: u64,
) -> Option<usize> {
    let n = candidates.len();
    match n {
        0 => return None,
        1 => return load(&candidates[0]).map(|_| 0),
        _ => {}
    }
    let (a, b) = two_distinct(n, random);
    match better(load(&candidates[a]), load(&candidates[b])) {
        Some(Ordering::Greater) => Some(b),
        Some(_) => Some(a),
        None => least_loaded(candidates, load),
    }
}

/// Two different indices below `n` (at least 2) from one random number.
fn two_distinct(n: usize, random: u64) -> (usize, usize) {
    let n64 = n as u64;
    let a = random % n64;
    let step = 1 + (random / n64) % (n64 - 1);
    (a as usize, ((a + step) % n64) as usize)
}

/// `Less` when `a` is the better choice, `Greater` when `b` is, `Equal` on a tie; `None`
/// when neither is available.
fn better<S: Ord>(a: Option<S>, b: Option<S>) -> Option<Ordering> {
    match (a, b) {
        (None, None) => None,
        (Some(_), None) => Some(Ordering::Less),
        (None, Some(_)) => Some(Ordering::Greater),
        (Some(a), Some(b)) => Some(a.cmp(&b)),
    }
}

/// The index of the available candidate with the lowest score, the first on a tie.
pub fn least_loaded<T, S: Ord>(candidates: &[T], load: impl Fn(&T) -> Option<S>) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| load(c).map(|s| (s, i)))
        .min()
        .map(|(_, i)| i)
}

/// Uniform random choice among `n` candidates, blind to load: a baseline. `None` when
/// `n == 0`.
pub fn random_pick(n: usize, random: u64) -> Option<usize> {
    (n > 0).then(|| (random % n as u64) as usize)
}

/// Round-robin, blind to load, as a ZeroMQ DEALER connected to several nodes does: a
/// baseline.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// The next of `n` candidates in turn; `None` when `n == 0`.
    pub fn pick(&mut self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        let chosen = self.next % n;
        self.next = chosen + 1;
        Some(chosen)
    }
}

/// What a node does with a request its own queue has no room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spill {
    /// Take it here: the queue has room.
    Admit,
    /// Forward it, once, to the peer at this index of the candidates.
    Forward(usize),
    /// Answer 503.
    Reject,
}

/// The facts a spillover decision reads about one request at one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpillRequest {
    /// Whether this node's queue for the app is full.
    pub queue_full: bool,
    /// Whether the app has `spillover` on.
    pub spillover: bool,
    /// Whether the request was already forwarded by another node: it is never forwarded
    /// twice, so two full nodes cannot hand it back and forth.
    pub forwarded: bool,
}

/// Where a request goes: here when the queue has room; else, with spillover on and the
/// request not yet forwarded, to the least-loaded peer running the app (`peers`, with their
/// announced load); else nowhere (503). Peers that cannot take it (full, broken) are never
/// chosen.
pub fn spillover(request: SpillRequest, peers: &[Load]) -> Spill {
    if !request.queue_full {
        return Spill::Admit;
    }
    if !request.spillover || request.forwarded {
        return Spill::Reject;
    }
    least_loaded(peers, Load::score).map_or(Spill::Reject, Spill::Forward)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(queue: u64, busy: u64) -> Load {
        Load {
            queue,
            busy,
            workers: busy,
            pool_limit: 4,
            queue_limit: 10,
            health: Health::Running,
        }
    }

    #[test]
    fn an_announced_entry_reads_as_a_load() {
        let mut entry = AppAnnouncement {
            version: 1,
            hash: String::new(),
            tasks: Default::default(),
            load: crate::cluster::announcement::Load {
                queue: 3,
                busy: 2,
                workers: 2,
                pool_limit: 4,
                queue_limit: 10,
            },
            state: AppState::Running,
        };
        assert_eq!(Load::from(&entry), load(3, 2).with_workers(2));
        for (state, health) in [
            (AppState::Starting, Health::Starting),
            (AppState::Broken, Health::Unavailable),
            (AppState::Stopping, Health::Unavailable),
        ] {
            entry.state = state;
            assert_eq!(Load::from(&entry).health, health);
            assert_eq!(Health::from_name(state.name()), health);
        }
    }

    #[test]
    fn idle_room_beats_a_queue() {
        assert!(load(0, 1).score() < load(0, 4).score());
        assert!(load(0, 4).score() < load(1, 4).score());
    }

    #[test]
    fn score_is_per_worker_the_app_may_have() {
        let small = Load {
            pool_limit: 1,
            ..load(0, 1)
        };
        let large = Load {
            pool_limit: 8,
            ..load(0, 2)
        };
        assert!(large.score() < small.score());
    }

    #[test]
    fn full_broken_and_stopping_are_excluded() {
        assert_eq!(load(10, 4).score(), None);
        for state in ["broken", "stopping", "stopped", "failed", "something-new"] {
            let l = Load {
                health: Health::from_name(state),
                ..load(0, 0)
            };
            assert_eq!(l.score(), None, "{state}");
        }
    }

    #[test]
    fn starting_counts_as_busy() {
        let starting = Load {
            health: Health::Starting,
            ..load(0, 0)
        };
        assert!(starting.score().is_some());
        assert!(load(0, 3).score() < starting.score());
    }

    #[test]
    fn zero_pool_limit_does_not_divide_by_zero() {
        let l = Load {
            pool_limit: 0,
            ..load(2, 0)
        };
        assert_eq!(l.score().unwrap().per_worker, 2 * SCALE);
    }

    #[test]
    fn adjusted_fills_workers_then_queue() {
        assert_eq!(load(0, 2).adjusted(3), load(1, 4).with_workers(2));
        assert_eq!(load(3, 4).adjusted(-5), load(0, 2).with_workers(4));
        assert_eq!(load(0, 1).adjusted(-5), load(0, 0).with_workers(1));
    }

    impl Load {
        fn with_workers(self, workers: u64) -> Load {
            Load { workers, ..self }
        }
    }

    #[test]
    fn client_score_puts_own_requests_first() {
        let quiet = client_score(&load(5, 4), 0).unwrap();
        let busy = client_score(&load(0, 0), 1).unwrap();
        assert!(quiet < busy);
        assert!(client_score(&load(0, 0), 1) < client_score(&load(0, 1), 1));
        assert_eq!(client_score(&load(10, 4), 0), None);
    }

    #[test]
    fn p2c_prefers_the_less_loaded_of_two() {
        let nodes = [load(5, 4), load(0, 0)];
        for r in 0..100 {
            assert_eq!(power_of_two(&nodes, Load::score, r), Some(1));
        }
    }

    #[test]
    fn p2c_falls_back_when_both_drawn_are_full() {
        let nodes = [load(10, 4), load(10, 4), load(10, 4), load(2, 4)];
        for r in 0..100 {
            assert_eq!(power_of_two(&nodes, Load::score, r), Some(3));
        }
        let all_full = [load(10, 4), load(10, 4)];
        assert_eq!(power_of_two(&all_full, Load::score, 7), None);
        assert_eq!(power_of_two::<Load, Score>(&[], Load::score, 7), None);
        assert_eq!(power_of_two(&[load(10, 4)], Load::score, 7), None);
        assert_eq!(power_of_two(&[load(9, 4)], Load::score, 7), Some(0));
    }

    #[test]
    fn two_distinct_covers_every_pair() {
        let n = 5;
        let mut seen = std::collections::BTreeSet::new();
        for r in 0..1000 {
            let (a, b) = two_distinct(n, r);
            assert_ne!(a, b);
            seen.insert((a, b));
        }
        assert_eq!(seen.len(), n * (n - 1));
    }

    #[test]
    fn baselines_are_blind() {
        let mut rr = RoundRobin::default();
        let picks: Vec<_> = (0..7).map(|_| rr.pick(3).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(
            rr.pick(2),
            Some(1),
            "a shrunk set keeps its turn, within range"
        );
        assert_eq!(rr.pick(2), Some(0));
        assert_eq!(rr.pick(0), None);
        assert_eq!(random_pick(4, 10), Some(2));
        assert_eq!(random_pick(0, 10), None);
    }

    #[test]
    fn spillover_decisions() {
        let peers = [load(10, 4), load(3, 4), load(1, 4)];
        let full = SpillRequest {
            queue_full: true,
            spillover: true,
            forwarded: false,
        };
        assert_eq!(spillover(full, &peers), Spill::Forward(2));
        let room = SpillRequest {
            queue_full: false,
            ..full
        };
        assert_eq!(spillover(room, &peers), Spill::Admit);
        let off = SpillRequest {
            spillover: false,
            ..full
        };
        assert_eq!(spillover(off, &peers), Spill::Reject);
        let again = SpillRequest {
            forwarded: true,
            ..full
        };
        assert_eq!(spillover(again, &peers), Spill::Reject);
        assert_eq!(spillover(full, &[load(10, 4)]), Spill::Reject);
        assert_eq!(spillover(full, &[]), Spill::Reject);
    }
}
