//! One control request, one reply: a DEALER to the node's control ROUTER, framed as a REQ
//! socket would (`["", json, frames...]`), waiting at most the given time.
//!
//! A DEALER rather than a REQ: a REQ that never hears back refuses to send again and cannot
//! be closed without lingering; here every exit path is a plain drop with `linger` 0.

use std::time::{Duration, Instant};

use serde_json::Value;

/// What went wrong with a request, for the exit code and the message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlFailure {
    /// The node answered with an error.
    #[error("error {code}: {message}")]
    Reply { code: u64, message: String },
    /// No answer in time, or the transport failed, or the answer is not a control reply.
    #[error("{0}")]
    Transport(String),
}

/// Sends `json` (and `frames` after it) to the control endpoint `node` and returns the reply's
/// `ok` value.
pub fn request(
    node: &str,
    timeout: Duration,
    json: &[u8],
    frames: &[&[u8]],
) -> Result<Value, ControlFailure> {
    let transport = |e: &dyn std::fmt::Display| ControlFailure::Transport(format!("{node}: {e}"));
    let address = cocaine_os::endpoint::resolve(node).map_err(|e| transport(&e))?;
    let context = zmq::Context::new();
    let socket = context.socket(zmq::DEALER).map_err(|e| transport(&e))?;
    socket.set_linger(0).map_err(|e| transport(&e))?;
    socket.connect(&address).map_err(|e| transport(&e))?;
    let mut message: Vec<&[u8]> = vec![b"", json];
    message.extend_from_slice(frames);
    socket
        .send_multipart(message, 0)
        .map_err(|e| transport(&e))?;

    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ControlFailure::Transport(format!(
                "no answer from {node} within {} s (is the node running with --control {node}?)",
                timeout.as_secs_f64()
            )));
        }
        // Whole milliseconds, rounded up, so a sub-millisecond rest still waits.
        let wait_ms = i64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i64::MAX);
        match socket.poll(zmq::POLLIN, wait_ms) {
            Ok(0) => continue,
            Ok(_) => break,
            Err(zmq::Error::EINTR) => continue,
            Err(e) => return Err(transport(&e)),
        }
    }
    let reply = socket.recv_multipart(0).map_err(|e| transport(&e))?;
    // `["", json]`: the delimiter the ROUTER kept, then the reply.
    let json = match reply.as_slice() {
        [delimiter, json] if delimiter.is_empty() => json,
        _ => {
            return Err(ControlFailure::Transport(format!(
                "{node}: a reply of {} frame(s), expected an empty delimiter and a JSON frame",
                reply.len()
            )))
        }
    };
    parse_reply(json).map_err(|why| ControlFailure::Transport(format!("{node}: {why}")))?
}

/// Reads `{"ok": value}` or `{"error": {"code": N, "message": "..."}}`. The outer `Err` is a
/// reply that is neither.
pub fn parse_reply(json: &[u8]) -> Result<Result<Value, ControlFailure>, String> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| format!("the reply is not JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("the reply is not a JSON object".into());
    };
    if object.len() == 1 {
        if let Some(ok) = object.remove("ok") {
            return Ok(Ok(ok));
        }
        if let Some(Value::Object(error)) = object.get("error") {
            if let (Some(code), Some(message)) = (
                error.get("code").and_then(Value::as_u64),
                error.get("message").and_then(Value::as_str),
            ) {
                return Ok(Err(ControlFailure::Reply {
                    code,
                    message: message.to_owned(),
                }));
            }
        }
    }
    Err(format!(
        "the reply is neither {{\"ok\": ...}} nor {{\"error\": {{\"code\", \"message\"}}}}: {}",
        String::from_utf8_lossy(json)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocaine_core::control::ControlReply;
    use serde_json::json;

    #[test]
    fn replies_as_the_node_encodes_them() {
        let ok = ControlReply::ok(json!({"app": "echo"})).encode();
        assert_eq!(parse_reply(&ok), Ok(Ok(json!({"app": "echo"}))));
        let error = ControlReply::error(404, "no app \"x\"").encode();
        let failure = parse_reply(&error).unwrap().unwrap_err();
        assert_eq!(failure.to_string(), "error 404: no app \"x\"");
    }

    #[test]
    fn anything_else_is_not_a_reply() {
        for bad in [
            &b"nope"[..],
            b"[]",
            b"{}",
            b"{\"ok\": 1, \"extra\": 2}",
            b"{\"error\": {\"code\": \"x\", \"message\": \"m\"}}",
            b"{\"error\": \"boom\"}",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn silence_is_a_timeout_that_names_the_node() {
        // A port nobody listens on: ZeroMQ keeps trying to connect, nothing ever answers.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let node = format!("tcp://127.0.0.1:{port}");
        let started = Instant::now();
        let err = request(&node, Duration::from_millis(200), b"{}", &[]).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            err.to_string(),
            format!(
                "no answer from {node} within 0.2 s (is the node running with --control {node}?)"
            )
        );
    }

    #[test]
    fn an_endpoint_that_cannot_be_resolved_is_named() {
        let err = request(
            "tcp://no-such-iface0:5000",
            Duration::from_secs(1),
            b"{}",
            &[],
        );
        let text = err.unwrap_err().to_string();
        assert!(text.contains("no-such-iface0"), "{text}");
    }
}
