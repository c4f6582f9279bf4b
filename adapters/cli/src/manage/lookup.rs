//! `cocaine call APP`: which endpoint to call, from the node's `info` about the app.

use serde_json::Value;

/// How a request-reply task is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Native,
    ZeromqServer,
}

/// A task `cocaine call` can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callable {
    pub task: String,
    pub endpoint: String,
    pub kind: Kind,
}

/// The task to call in an `info APP` reply: the one named, else the first native-server,
/// else the first zeromq-server. The error completes "app X ...".
pub fn request_reply(info: &Value, task: Option<&str>) -> Result<Callable, String> {
    let tasks = info.get("tasks").and_then(Value::as_object);
    let callable = |name: &String, t: &Value| {
        let kind = match t.get("type").and_then(Value::as_str)? {
            "native-server" => Kind::Native,
            "zeromq-server" => Kind::ZeromqServer,
            _ => return None,
        };
        Some(Callable {
            task: name.clone(),
            endpoint: t.get("endpoint").and_then(Value::as_str)?.to_owned(),
            kind,
        })
    };
    let all = || tasks.into_iter().flatten();
    if let Some(wanted) = task {
        let (name, t) = all()
            .find(|(name, _)| name.as_str() == wanted)
            .ok_or_else(|| format!("has no task {wanted:?}"))?;
        return callable(name, t).ok_or_else(|| {
            format!("task {wanted:?} is neither a native-server nor a zeromq-server")
        });
    }
    let found: Vec<Callable> = all().filter_map(|(n, t)| callable(n, t)).collect();
    found
        .iter()
        .find(|c| c.kind == Kind::Native)
        .or_else(|| found.first())
        .cloned()
        .ok_or_else(|| "has no native-server or zeromq-server task to call".to_owned())
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
        let native_server =
            |info: &Value| request_reply(info, None).ok().map(|c| (c.task, c.endpoint));
        assert_eq!(
            native_server(&info),
            Some(("c".into(), "tcp://127.0.0.1:2".into()))
        );
        let none = json!({"tasks": {"t": {"type": "recurring-timer"}}});
        assert_eq!(native_server(&none), None);
        assert_eq!(native_server(&json!({})), None);
    }

    #[test]
    fn a_task_to_call() {
        let info = json!({"tasks": {
            "a-timer": {"type": "recurring-timer"},
            "b": {"type": "zeromq-server", "endpoint": "tcp://127.0.0.1:1"},
            "c": {"type": "native-server", "endpoint": "tcp://127.0.0.1:2"}
        }});
        let call = |task| request_reply(&info, task).map(|c| (c.task, c.kind));
        assert_eq!(call(None), Ok(("c".into(), Kind::Native)));
        assert_eq!(call(Some("b")), Ok(("b".into(), Kind::ZeromqServer)));
        assert_eq!(call(Some("zz")), Err("has no task \"zz\"".into()));
        assert!(call(Some("a-timer")).unwrap_err().contains("neither"));
        let only_zeromq =
            json!({"tasks": {"up": {"type": "zeromq-server", "endpoint": "tcp://h:1"}}});
        assert_eq!(
            request_reply(&only_zeromq, None).map(|c| c.endpoint),
            Ok("tcp://h:1".into())
        );
        assert!(request_reply(&json!({}), None).is_err());
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
