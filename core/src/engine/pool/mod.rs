//! Pool sizing: how many workers an app should have. A policy sees a sample of the engine's
//! load and answers with a target; the engine spawns up to it (never past `pool-limit`) and
//! retires idle workers above it (never under `pool-min`). Idle workers also leave on their own
//! after `idle-timeout`, whatever the policy says, so a policy that only ever grows is fine.

mod busyness;
mod queue;

use std::fmt;
use std::time::Instant;

pub use busyness::BusynessPolicy;
pub use queue::QueuePolicy;

use super::config::{EngineConfig, PoolPolicyConfig};

/// What a policy sees at each decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSample {
    pub now: Instant,
    /// Jobs waiting in the queue.
    pub queued: usize,
    /// Job slots in use on ready workers.
    pub busy_slots: usize,
    /// Ready workers with at least one job.
    pub busy_workers: usize,
    /// Handshaked workers that take jobs.
    pub ready: usize,
    /// Spawned workers not handshaked yet.
    pub starting: usize,
    /// `ready + starting`: the workers that count towards the pool's size.
    pub active: usize,
    pub pool_min: usize,
    pub pool_limit: usize,
    pub concurrency: usize,
}

/// A pool-sizing strategy. Called on every change of load (arrival, dispatch, end, worker
/// ready or gone) and at `next_wake`; must be cheap, deterministic and free of IO.
pub trait PoolPolicy: fmt::Debug + Send {
    /// How many active workers the pool should have now.
    fn target(&mut self, sample: &PoolSample) -> usize;

    /// When the policy wants to be asked again even if nothing changes.
    fn next_wake(&self) -> Option<Instant> {
        None
    }
}

/// Builds the policy a manifest asked for.
pub fn from_config(config: &EngineConfig) -> Box<dyn PoolPolicy> {
    match &config.pool_policy {
        PoolPolicyConfig::Queue => Box::new(QueuePolicy::new(config.grow_threshold)),
        PoolPolicyConfig::Busyness(b) => Box::new(BusynessPolicy::new(b.clone())),
    }
}
