//! `cocaine call APP`: which endpoint to call, from the node's `info` about the app.

use serde_json::Value;

/// The first `native-server` task of an `info APP` reply (tasks in the reply's order, by
/// name): `(task, endpoint)`.
pub fn native_server(info: &Value) -> Option<(String, String)> {
    info.get("tasks")?
        .as_object()?
        .iter()
        .find_map(|(name, task)| {
            if task.get("type").and_then(Value::as_str) != Some("native-server") {
                return None;
            }
            let endpoint = task.get("endpoint").and_then(Value::as_str)?;
            Some((name.clone(), endpoint.to_owned()))
        })
}

/// The address to connect to for an endpoint the node *binds*. A wildcard host (`*`,
/// `0.0.0.0`, `[::]`) accepts connections on every address of the node's host, so the
/// host of the control endpoint (already resolved) is used in its place; other endpoints
/// are used as they are.
pub fn connect_address(bound: &str, node: &str) -> String {
    let Some((host, port)) = split_tcp(bound) else {
        return bound.to_owned();
    };
    if !matches!(host, "*" | "0.0.0.0" | "[::]" | "::") {
        return bound.to_owned();
    }
    let node_host = match split_tcp(node) {
        Some((h, _)) if !matches!(h, "*" | "0.0.0.0" | "[::]" | "::") => h,
        _ => "127.0.0.1",
    };
    format!("tcp://{node_host}:{port}")
}

fn split_tcp(endpoint: &str) -> Option<(&str, &str)> {
    endpoint.strip_prefix("tcp://")?.rsplit_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_native_server_by_name() {
        let info = json!({"tasks": {
            "a-timer": {"type": "recurring-timer"},
            "b": {"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:1"},
            "c": {"type": "native-server", "endpoint": "tcp://127.0.0.1:2"},
            "d": {"type": "native-server", "endpoint": "tcp://127.0.0.1:3"}
        }});
        assert_eq!(
            native_server(&info),
            Some(("c".into(), "tcp://127.0.0.1:2".into()))
        );
        let none = json!({"tasks": {"t": {"type": "recurring-timer"}}});
        assert_eq!(native_server(&none), None);
        assert_eq!(native_server(&json!({})), None);
    }

    #[test]
    fn wildcards_become_the_node_host() {
        let node = "tcp://10.1.2.3:5000";
        assert_eq!(connect_address("tcp://*:9100", node), "tcp://10.1.2.3:9100");
        assert_eq!(
            connect_address("tcp://0.0.0.0:9100", node),
            "tcp://10.1.2.3:9100"
        );
        assert_eq!(
            connect_address("tcp://[::]:9100", node),
            "tcp://10.1.2.3:9100"
        );
        assert_eq!(
            connect_address("tcp://*:9100", "tcp://*:5000"),
            "tcp://127.0.0.1:9100"
        );
        assert_eq!(
            connect_address("tcp://lo:9100", node),
            "tcp://lo:9100",
            "interface names are resolved later, as for any endpoint"
        );
        assert_eq!(connect_address("ipc:///tmp/x", node), "ipc:///tmp/x");
    }
}
