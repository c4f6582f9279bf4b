//! `cocaine peers`: the nodes this node hears from (docs/cluster.md), one row per app a peer
//! runs, with its version, state, load and how long the peer has been silent.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::table::Table;
use super::{exit, field, print_json, Target, DEFAULT_TIMEOUT_S};

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Print the reply as JSON, for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `cocaine peers`.
pub fn peers(args: PeersArgs) -> ExitCode {
    let request = br#"{"version":1,"action":"peers"}"#;
    exit(
        "peers",
        args.target
            .send(DEFAULT_TIMEOUT_S, request, &[])
            .map(|reply| {
                if args.json {
                    print_json(&reply);
                } else {
                    print!("{}", render(&reply));
                }
            }),
    )
}

/// A header line on this node's discovery, then the table (or why it is empty).
pub fn render(reply: &Value) -> String {
    let Some(discovery) = field(reply, "discovery").as_object() else {
        return "discovery is off on this node (cocaine node --discovery multicast, --peer \
                tcp://HOST:PORT, or --etcd http://HOST:PORT)\n"
            .to_owned();
    };
    let mut modes = Vec::new();
    if let Some(group) = discovery.get("multicast").and_then(Value::as_str) {
        modes.push(format!("multicast {group}"));
    }
    let statics: Vec<&str> = discovery
        .get("peers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !statics.is_empty() {
        modes.push(format!("static peers {}", statics.join(", ")));
    }
    if discovery.get("registry").and_then(Value::as_bool) == Some(true) {
        modes.push("etcd".to_owned());
    }
    let mut out = format!(
        "node {} ({}): {}, every {} ms\n",
        text(field(reply, "node_id")),
        text(field(reply, "control")),
        modes.join("; "),
        text(discovery.get("interval_ms").unwrap_or(&Value::Null)),
    );
    let peers = field(reply, "peers")
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if peers.is_empty() {
        out.push_str("no peers\n");
        return out;
    }
    let mut table = Table::new(&[
        "NODE",
        "CONTROL",
        "APP",
        "VERSION",
        "STATE",
        "QUEUE",
        "BUSY",
        "WORKERS",
        "LAST SEEN",
    ]);
    for peer in peers {
        let seen = format!("{} ms ago", text(field(peer, "silent_ms")));
        let apps = field(peer, "apps").as_object().cloned().unwrap_or_default();
        if apps.is_empty() {
            table.row(vec![
                text(field(peer, "node_id")),
                text(field(peer, "control")),
                "-".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                seen.clone(),
            ]);
        }
        for (name, app) in &apps {
            table.row(vec![
                text(field(peer, "node_id")),
                text(field(peer, "control")),
                name.clone(),
                text(field(app, "version")),
                text(field(app, "state")),
                format!(
                    "{}/{}",
                    text(field(app, "queue")),
                    text(field(app, "queue_limit"))
                ),
                text(field(app, "busy")),
                format!(
                    "{}/{}",
                    text(field(app, "workers")),
                    text(field(app, "pool_limit"))
                ),
                seen.clone(),
            ]);
        }
    }
    out.push_str(&table.render());
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_row_per_app_of_each_peer() {
        let reply = json!({
            "node_id": "a", "control": "tcp://127.0.0.1:5000",
            "discovery": {"multicast": null, "peers": ["127.0.0.2:5000"], "interval_ms": 1000},
            "peers": [
                {"node_id": "b", "control": "tcp://127.0.0.2:5000", "silent_ms": 120,
                 "apps": {"echo": {"version": 2, "state": "running", "queue": 1,
                                   "queue_limit": 100, "busy": 1, "workers": 2,
                                   "pool_limit": 10}}},
                {"node_id": "c", "control": "tcp://127.0.0.3:5000", "silent_ms": 5, "apps": {}},
            ],
            "stats": {},
        });
        let text = render(&reply);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "node a (tcp://127.0.0.1:5000): static peers 127.0.0.2:5000, every 1000 ms"
        );
        assert!(lines[1].starts_with("NODE"), "{text}");
        assert!(
            lines[2].contains("echo") && lines[2].contains("1/100") && lines[2].contains("2/10"),
            "{text}"
        );
        assert!(lines[2].ends_with("120 ms ago"), "{text}");
        assert!(lines[3].starts_with("c "), "{text}");
    }

    #[test]
    fn etcd_is_named_in_the_header() {
        let reply = json!({"node_id": "a", "control": "tcp://127.0.0.1:5000",
                           "discovery": {"multicast": null, "peers": [], "registry": true,
                                         "interval_ms": 200},
                           "peers": []});
        assert!(render(&reply).starts_with("node a (tcp://127.0.0.1:5000): etcd, every 200 ms"));
    }

    #[test]
    fn discovery_off_and_no_peers_say_so() {
        assert!(render(&json!({"discovery": null, "peers": []})).starts_with("discovery is off"));
        let lonely = json!({"node_id": "a", "control": "tcp://x:1",
                            "discovery": {"multicast": "239.192.74.66:5001", "peers": [],
                                          "interval_ms": 1000},
                            "peers": []});
        assert!(render(&lonely).ends_with("no peers\n"));
    }
}
