//! The `resolve` control action (docs/control.md): which nodes run an app, where each of its
//! tasks listens there, and how loaded each node is, so a client can choose a node by load
//! (docs/cluster.md, "How balancing chooses"). This node answers from its own engine and from
//! its peer table (load as last announced).

use serde_json::{json, Value};

use super::Node;
use crate::cluster::{AppAnnouncement, AppState};
use crate::time::Now;

impl Node {
    /// Every node known here that runs `app`, this one first; `None` when none does. Nodes
    /// whose app is starting, broken or stopping are listed with their state: the client
    /// decides (docs/cluster.md).
    pub(super) fn resolve_app(&self, now: Now, app: &str) -> Option<Value> {
        let mut nodes = Vec::new();
        if let Some(local) = self.live(app) {
            let control = self.config.control.first().map(|c| self.on_host(c));
            nodes.push(node_entry(
                self.node_id(),
                control.as_deref(),
                true,
                0,
                &self.announced_app(local),
            ));
        }
        if let Some(table) = self.peer_table() {
            // A tombstone is announced as an entry too: no node runs that app.
            let live = table
                .with_app(app)
                .filter(|(_, a)| a.state != AppState::Deleted);
            for (peer, entry) in live {
                let silent = now.mono.saturating_duration_since(peer.last_seen);
                nodes.push(node_entry(
                    Some(&peer.node_id),
                    Some(&peer.control),
                    false,
                    silent.as_millis() as u64,
                    entry,
                ));
            }
        }
        if nodes.is_empty() {
            return None;
        }
        Some(json!({ "app": app, "nodes": nodes }))
    }
}

fn node_entry(
    node_id: Option<&str>,
    control: Option<&str>,
    local: bool,
    silent_ms: u64,
    a: &AppAnnouncement,
) -> Value {
    json!({
        "node_id": node_id,
        "control": control,
        "local": local,
        "silent_ms": silent_ms,
        "version": a.version,
        "state": a.state,
        "tasks": a.tasks,
        "queue": a.load.queue,
        "busy": a.load.busy,
        "workers": a.load.workers,
        "pool_limit": a.load.pool_limit,
        "queue_limit": a.load.queue_limit,
    })
}
