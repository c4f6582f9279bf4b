//! What an engine is told by its manifest's `engine` section, already validated.

use std::time::Duration;

/// How workers run the app's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// A child process per worker.
    Process,
    /// A thread inside the node per worker (native apps only).
    Thread,
}

/// Which pool-sizing policy the engine uses, with its parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PoolPolicyConfig {
    /// Grow with the queue (`busy + ceil(queue / grow-threshold)`), shrink by idle timeouts.
    Queue,
    /// uWSGI "cheaper busyness" in spirit: grow and shrink by the busy share of slots averaged
    /// over a window.
    Busyness(BusynessConfig),
}

/// Parameters of the busyness policy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BusynessConfig {
    /// How long one sample window lasts.
    pub window: Duration,
    /// Grow when the average busy share of slots in a window is above this (0..=1).
    pub high: f64,
    /// Shrink when it stays below this (0..=1) for `backoff` windows in a row.
    pub low: f64,
    /// How many windows below `low` before one worker is retired.
    pub backoff: u32,
    /// How many workers to add at once when growing.
    pub step: usize,
}

impl Default for BusynessConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(1),
            high: 0.5,
            low: 0.25,
            backoff: 3,
            step: 1,
        }
    }
}

/// The validated engine configuration of one app. Defaults are those of docs/manifest.md.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EngineConfig {
    pub backend: Backend,
    pub heartbeat_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub pool_limit: usize,
    pub pool_min: usize,
    pub queue_limit: usize,
    pub grow_threshold: usize,
    pub concurrency: usize,
    pub idle_timeout: Duration,
    pub startup_timeout: Duration,
    pub termination_timeout: Duration,
    pub restart_intensity: u32,
    pub restart_period: Duration,
    /// Recycle a worker after this many jobs; 0 never recycles.
    pub max_requests: u64,
    pub pool_policy: PoolPolicyConfig,
    /// The largest message accepted on the worker channel, in bytes.
    pub max_message: usize,
    /// How long a job may run when its request names no `timeout` (manifest `job-timeout`);
    /// `None` lets it run for ever.
    pub job_timeout: Option<Duration>,
    /// Tell callers the whole failure report (a worker's stderr, often a traceback with the
    /// node's paths) rather than one short line (manifest `expose-errors`; for development).
    pub expose_errors: bool,
    /// Whether the app's workers run plain handlers inline (on the thread that reads the
    /// channel, replies of one read written together) at any concurrency: manifest `inline`,
    /// passed to workers as `COCAINE_INLINE`. `None` (the key absent) leaves the variable to
    /// the node's own environment.
    pub inline: Option<bool>,
    /// Whether the app's workers may be forked from a process that has already imported
    /// the SDK and the app (manifest `fork-server`, Python apps only; docs/manifest.md).
    pub fork_server: bool,
}

/// The default `job-timeout`: shorter than a client's usual 30 s patience, so a hung handler
/// is answered with 504 (and logged) rather than left to the caller to give up on.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(20);

/// The default `max-message`: 64 MiB on every endpoint and the worker channel.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

impl Default for EngineConfig {
    fn default() -> Self {
        let pool_limit = 10;
        let queue_limit = 100;
        Self {
            backend: Backend::Process,
            heartbeat_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            pool_limit,
            pool_min: 0,
            queue_limit,
            grow_threshold: default_grow_threshold(queue_limit, pool_limit),
            concurrency: 1,
            idle_timeout: Duration::from_secs(600),
            startup_timeout: Duration::from_secs(10),
            termination_timeout: Duration::from_secs(5),
            restart_intensity: 5,
            restart_period: Duration::from_secs(10),
            max_requests: 0,
            pool_policy: PoolPolicyConfig::Queue,
            max_message: DEFAULT_MAX_MESSAGE,
            job_timeout: Some(DEFAULT_JOB_TIMEOUT),
            expose_errors: false,
            inline: None,
            fork_server: false,
        }
    }
}

/// `ceil(queue-limit / pool-limit)`, at least 1: a full queue asks for a full pool.
pub fn default_grow_threshold(queue_limit: usize, pool_limit: usize) -> usize {
    queue_limit.div_ceil(pool_limit.max(1)).max(1)
}
