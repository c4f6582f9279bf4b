//! The metrics endpoint through a hand-driven node: GET /metrics answered in the Prometheus
//! text format, everything else with its HTTP error, one request per connection.

use crate::harness;

use bytes::Bytes;
use cocaine_core::node::{Input, NodeConfig, Output};
use cocaine_core::ConnId;
use harness::*;

const METRICS: &str = "tcp://127.0.0.1:9101";
const EP: &str = "tcp://127.0.0.1:9501";

fn node() -> Harness {
    let mut h = Harness::with_config(NodeConfig {
        metrics: vec![METRICS.to_owned()],
        ..NodeConfig::default()
    });
    h.pump();
    h.deploy(
        "echo",
        &format!(
            r#"{{"type": "python", "args": "local:///srv/app.py", "engine": {{"pool-min": 1}},
               "tasks": {{"serve": {{"type": "native-server", "endpoint": "{EP}"}}}}}}"#
        ),
    );
    h
}

/// Sends `request` on a new connection; returns what the node wrote and whether it closed.
fn exchange(h: &mut Harness, conn: u64, request: &[&[u8]]) -> (String, bool) {
    let endpoint = h.endpoint(METRICS);
    let conn = ConnId(conn);
    h.fresh();
    h.input(Input::Accepted {
        endpoint,
        conn,
        peer: "127.0.0.1:40000".into(),
    });
    for part in request {
        h.input(Input::ConnData {
            conn,
            bytes: Bytes::copy_from_slice(part),
        });
    }
    let outputs = h.fresh();
    let mut written = Vec::new();
    let mut closed = false;
    for output in outputs {
        match output {
            Output::ConnSend { conn: c, bytes } if c == conn => written.extend_from_slice(&bytes),
            Output::ConnClose { conn: c } if c == conn => closed = true,
            _ => {}
        }
    }
    (String::from_utf8(written).unwrap(), closed)
}

#[test]
fn get_metrics_in_pieces() {
    let mut h = node();
    let (reply, closed) = exchange(
        &mut h,
        1,
        &[b"GET /metr", b"ics HTTP/1.1\r\nHost: x\r\n", b"\r\n"],
    );
    assert!(closed);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{reply}"
    );
    assert!(reply.contains("connection: close\r\n"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.contains("# TYPE cocaine_app_up gauge\n"), "{body}");
    assert!(
        body.contains("cocaine_app_up{app=\"echo\",state=\"running\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("cocaine_app_workers{app=\"echo\",state=\"idle\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("cocaine_jobs_completed_total{app=\"echo\",task=\"serve\"} 0\n"),
        "{body}"
    );
    assert!(
        body.contains("cocaine_job_run_seconds{app=\"echo\",task=\"serve\",quantile=\"0.99\"} 0\n"),
        "{body}"
    );
    let length: usize = reply
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(length, body.len());
}

#[test]
fn bad_requests_get_their_error_and_the_endpoint_goes_on() {
    let mut h = node();
    let cases: [(&[u8], &str); 5] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 "),
        (
            b"POST /metrics HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 405 ",
        ),
        (b"\x00\x01\x02 nonsense\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET /metrics HTTP/7.0\r\n\r\n", "HTTP/1.1 400 "),
        (b"HEAD /metrics HTTP/1.0\r\n\r\n", "HTTP/1.1 200 "),
    ];
    for (i, (request, start)) in cases.iter().enumerate() {
        let (reply, closed) = exchange(&mut h, 10 + i as u64, &[request]);
        assert!(closed, "{request:?}");
        assert!(reply.starts_with(start), "{request:?}: {reply}");
    }
    // A head that never ends is cut at the limit.
    let pad = vec![b'a'; 9000];
    let (reply, closed) = exchange(&mut h, 20, &[b"GET /metrics HTTP/1.1\r\nx: ", &pad]);
    assert!(closed && reply.starts_with("HTTP/1.1 431 "), "{reply}");
    // A client that leaves before its head ends is closed without an answer.
    let endpoint = h.endpoint(METRICS);
    h.input(Input::Accepted {
        endpoint,
        conn: ConnId(30),
        peer: "p".into(),
    });
    h.input(Input::ConnData {
        conn: ConnId(30),
        bytes: Bytes::from_static(b"GET /me"),
    });
    h.fresh();
    h.input(Input::ConnEof { conn: ConnId(30) });
    let outputs = h.fresh();
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::ConnClose { conn } if *conn == ConnId(30))));
    assert!(!outputs.iter().any(|o| matches!(o, Output::ConnSend { .. })));
    let (reply, _) = exchange(&mut h, 31, &[b"GET /metrics HTTP/1.0\r\n\r\n"]);
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
}
