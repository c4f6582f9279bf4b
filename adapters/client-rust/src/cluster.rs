//! A client for an app that runs on several nodes (docs/cluster.md, "How balancing chooses").
//!
//! It asks any node it knows for the app (`resolve` over control: the nodes that run it,
//! each task's endpoint there, and each node's announced load), then calls a node chosen by
//! the power of two choices on that load and its own requests in flight
//! (`cocaine_core::cluster::balance`). A 503 (the node's queue was full: the job never
//! started) is retried at another node; so is a node that does not answer at all, after
//! which the client resolves again. It resolves again every [`REFRESH`] as well, so it
//! follows nodes joining and leaving.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use cocaine_core::cluster::balance::{client_score, power_of_two, Health, Load};
use serde_json::{json, Value};

use crate::client::{Client, DEFAULT_TIMEOUT};
use crate::error::ClientError;
use cocaine_core::codec::native::Policy;

/// How often the client asks for the app's nodes again: the nodes' announcement interval.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The largest `resolve` answer taken: thousands of nodes fit; a larger one is refused.
const MAX_RESOLVE_ANSWER: i64 = 16 << 20;

/// The status a node answers when the app's queue is full.
const BUSY: u32 = 503;

/// Why a cluster call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No control endpoint answered `resolve`.
    #[error("no node answered resolve for {app:?}: {reason}")]
    Unresolved { app: String, reason: String },
    /// The nodes know no node that runs the app's task and can take a request.
    #[error("no node runs task {task:?} of {app:?} with room for a request")]
    NoNode { app: String, task: String },
    /// The call failed at the node chosen last (every node tried answered 503, or this).
    #[error("{endpoint}: {source}")]
    Call {
        endpoint: String,
        #[source]
        source: ClientError,
    },
}

/// One node that runs the app, as last resolved.
pub struct NodeEntry {
    /// The node's id in the cluster (none when it runs without discovery).
    pub node_id: Option<String>,
    /// Its control endpoint, where it can be asked to resolve again.
    pub control: Option<String>,
    /// The task's endpoint there.
    pub endpoint: String,
    /// The load it announced.
    pub load: Load,
    /// This client's requests in flight there.
    pub in_flight: u64,
    client: Option<Client>,
}

impl std::fmt::Debug for NodeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeEntry")
            .field("node_id", &self.node_id)
            .field("endpoint", &self.endpoint)
            .field("load", &self.load)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// A call's reply and where it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterReply {
    pub chunks: Vec<Vec<u8>>,
    /// The endpoint that answered.
    pub endpoint: String,
    /// The node that answered, if it has an id.
    pub node_id: Option<String>,
    /// Nodes tried before it (each answered 503 or did not answer).
    pub retries: usize,
}

/// Calls one task of one app on whichever node of the cluster suits best.
pub struct ClusterClient {
    ctx: zmq::Context,
    app: String,
    task: String,
    /// Control endpoints to resolve from: those given, then those learned.
    controls: Vec<String>,
    nodes: Vec<NodeEntry>,
    resolved_at: Option<Instant>,
    refresh: Duration,
    timeout: Duration,
    random: u64,
}

impl ClusterClient {
    /// A client for `task` of `app`, resolving through `controls` (any node's control
    /// endpoint; more are learned from the answers).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Unresolved`] when no control endpoint answers.
    pub fn connect(controls: &[String], app: &str, task: &str) -> Result<Self, ClusterError> {
        let mut client = ClusterClient {
            ctx: zmq::Context::new(),
            app: app.to_owned(),
            task: task.to_owned(),
            controls: controls.to_vec(),
            nodes: Vec::new(),
            resolved_at: None,
            refresh: REFRESH,
            timeout: DEFAULT_TIMEOUT,
            random: seed(),
        };
        client.resolve()?;
        Ok(client)
    }

    /// How long a call (and a resolve) may wait for its answer at one node.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// How often the nodes are resolved again.
    pub fn set_refresh(&mut self, refresh: Duration) {
        self.refresh = refresh;
    }

    /// The nodes as last resolved.
    pub fn nodes(&self) -> &[NodeEntry] {
        &self.nodes
    }

    /// Asks the first control endpoint that answers for the app's nodes, keeping the
    /// connections to nodes it already knew.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Unresolved`] when none answers.
    pub fn resolve(&mut self) -> Result<(), ClusterError> {
        let mut reason = String::from("no control endpoint given");
        for control in self.controls.clone() {
            match resolve_at(&self.ctx, &control, &self.app, self.timeout) {
                Ok(answer) => {
                    self.take(&control, &answer);
                    return Ok(());
                }
                Err(why) => reason = format!("{control}: {why}"),
            }
        }
        Err(ClusterError::Unresolved {
            app: self.app.clone(),
            reason,
        })
    }

    /// Replaces the node list with `answer`'s (from `control`), keeping open connections.
    fn take(&mut self, control: &str, answer: &Value) {
        let mut old = std::mem::take(&mut self.nodes);
        let entries = answer["nodes"].as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let Some(node) = parse_entry(entry, &self.task, control) else {
                continue;
            };
            if let Some(c) = &node.control {
                if !self.controls.contains(c) {
                    self.controls.push(c.clone());
                }
            }
            let kept = old
                .iter()
                .position(|o| o.endpoint == node.endpoint)
                .map(|i| old.swap_remove(i));
            self.nodes.push(NodeEntry {
                in_flight: kept.as_ref().map_or(0, |k| k.in_flight),
                client: kept.and_then(|k| k.client),
                ..node
            });
        }
        self.resolved_at = Some(Instant::now());
    }

    /// Calls `event` with `body` on the chosen node; a 503 or a node that does not answer
    /// is retried on another, each node at most once per call.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NoNode`] when no node is left to try, [`ClusterError::Call`] for any
    /// other error (the node's answer, e.g. 404 or 500, is final).
    pub fn call(&mut self, event: &str, body: &[u8]) -> Result<ClusterReply, ClusterError> {
        self.refresh_if_due();
        let mut tried: Vec<String> = Vec::new();
        let mut last_error = None;
        loop {
            let Some(i) = self.choose(&tried) else {
                return Err(last_error.unwrap_or(ClusterError::NoNode {
                    app: self.app.clone(),
                    task: self.task.clone(),
                }));
            };
            let endpoint = self.nodes[i].endpoint.clone();
            match self.call_at(i, event, body) {
                Ok(chunks) => {
                    return Ok(ClusterReply {
                        chunks,
                        node_id: self.nodes[i].node_id.clone(),
                        endpoint,
                        retries: tried.len(),
                    })
                }
                Err(ClientError::Remote {
                    code: BUSY,
                    message,
                }) => {
                    let source = ClientError::Remote {
                        code: BUSY,
                        message,
                    };
                    last_error = Some(ClusterError::Call {
                        endpoint: endpoint.clone(),
                        source,
                    });
                }
                Err(ClientError::Timeout) => {
                    // The node is gone or stuck: drop its connection, learn who is still
                    // there, and go elsewhere.
                    self.nodes[i].client = None;
                    last_error = Some(ClusterError::Call {
                        endpoint: endpoint.clone(),
                        source: ClientError::Timeout,
                    });
                    let _ = self.resolve();
                }
                Err(source) => return Err(ClusterError::Call { endpoint, source }),
            }
            tried.push(endpoint);
        }
    }

    fn refresh_if_due(&mut self) {
        let due = self
            .resolved_at
            .is_none_or(|at| at.elapsed() >= self.refresh);
        if due {
            // Keep the last answer if no node answers now: calls may still get through.
            let _ = self.resolve();
        }
    }

    /// Power of two choices among the nodes not yet tried.
    fn choose(&mut self, tried: &[String]) -> Option<usize> {
        let random = draw(&mut self.random);
        power_of_two(
            &self.nodes,
            |n| {
                if tried.contains(&n.endpoint) {
                    return None;
                }
                client_score(&n.load, n.in_flight)
            },
            random,
        )
    }

    fn call_at(&mut self, i: usize, event: &str, body: &[u8]) -> Result<Vec<Vec<u8>>, ClientError> {
        let timeout = self.timeout;
        let node = &mut self.nodes[i];
        if node.client.is_none() {
            node.client = Some(Client::connect_with(&self.ctx, &node.endpoint)?);
        }
        let client = node.client.as_mut().expect("connected above");
        node.in_flight += 1;
        let result = client.call_with(event, body, Policy::default(), timeout);
        node.in_flight -= 1;
        result
    }
}

/// One `resolve` request and its `ok` answer.
fn resolve_at(
    ctx: &zmq::Context,
    control: &str,
    app: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let socket = ctx.socket(zmq::REQ).map_err(|e| e.to_string())?;
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.set_rcvtimeo(millis).map_err(|e| e.to_string())?;
    socket.set_sndtimeo(millis).map_err(|e| e.to_string())?;
    socket
        .set_maxmsgsize(MAX_RESOLVE_ANSWER)
        .map_err(|e| e.to_string())?;
    socket.connect(control).map_err(|e| e.to_string())?;
    let request = json!({"version": 1, "action": "resolve", "app": app}).to_string();
    socket
        .send(request.as_bytes(), 0)
        .map_err(|e| e.to_string())?;
    let reply = socket.recv_bytes(0).map_err(|e| match e {
        zmq::Error::EAGAIN => "no answer".to_owned(),
        e => e.to_string(),
    })?;
    let reply: Value = serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
    if let Some(error) = reply.get("error") {
        return Err(format!("error {}: {}", error["code"], error["message"]));
    }
    match reply.get("ok") {
        Some(ok) if ok["nodes"].is_array() => Ok(ok.clone()),
        _ => Err("the answer has no list of nodes".to_owned()),
    }
}

/// A node entry of a `resolve` answer, for `task`; `None` without that task. A wildcard
/// host in an endpoint means "the host this node was reached at".
fn parse_entry(entry: &Value, task: &str, asked: &str) -> Option<NodeEntry> {
    let control = entry["control"].as_str().map(str::to_owned);
    let bound = entry["tasks"][task].as_str()?;
    let via = match control.as_deref() {
        Some(c) if entry["local"] != true => c,
        _ => asked,
    };
    let endpoint = reachable(bound, via);
    let number = |key: &str| entry[key].as_u64().unwrap_or(0);
    Some(NodeEntry {
        node_id: entry["node_id"].as_str().map(str::to_owned),
        control,
        endpoint,
        load: Load {
            queue: number("queue"),
            busy: number("busy"),
            workers: number("workers"),
            pool_limit: number("pool_limit"),
            queue_limit: number("queue_limit"),
            health: Health::from_name(entry["state"].as_str().unwrap_or("")),
        },
        in_flight: 0,
        client: None,
    })
}

/// `bound` with a wildcard host replaced by the host of `via`.
pub fn reachable(bound: &str, via: &str) -> String {
    let wildcard = ["*", "0.0.0.0", "[::]", "::"];
    let Some((host, port)) = split_tcp(bound) else {
        return bound.to_owned();
    };
    if !wildcard.contains(&host) {
        return bound.to_owned();
    }
    let via_host = match split_tcp(via) {
        Some((h, _)) if !wildcard.contains(&h) => h,
        _ => "127.0.0.1",
    };
    format!("tcp://{via_host}:{port}")
}

fn split_tcp(endpoint: &str) -> Option<(&str, &str)> {
    endpoint.strip_prefix("tcp://")?.rsplit_once(':')
}

/// A seed from the process's own hash randomness: the choice only needs to differ between
/// clients, not to be secret.
fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// SplitMix64: advances `state`, returns the next number.
fn draw(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
