//! http-server (docs/http.md) through a hand-driven node: requests become jobs with
//! `meta.http`, bodies stream in, replies go out in request order with the handler's head,
//! engine errors become statuses, the header timeout on hand-driven time, clients that
//! leave, a redeploy that keeps connections open, and the task's keys in the manifest.

use crate::harness;

use std::time::Duration;

use bytes::Bytes;
use cocaine_core::codec::http_wire::ReplyHead;
use cocaine_core::codec::worker::WorkerMessage;
use cocaine_core::manifest::Manifest;
use cocaine_core::node::{Input, Output, SocketKind};
use cocaine_core::ConnId;
use harness::*;

const EP: &str = "tcp://127.0.0.1:9400";

fn app_json(task_extra: &str, engine: &str, version: u32) -> String {
    format!(
        r#"{{"type": "python", "args": "local:///srv/web", "version": {version},
            "engine": {{{engine}}},
            "tasks": {{"web": {{"type": "http-server", "endpoint": "{EP}"{task_extra}}}}}}}"#
    )
}

fn setup(task_extra: &str, engine: &str, answer: Answer) -> Harness {
    let mut h = Harness::new();
    h.default.answer = answer;
    h.deploy("web", &app_json(task_extra, engine, 1));
    assert!(
        h.binds
            .iter()
            .any(|(_, kind, address)| *kind == SocketKind::Tcp && address == EP),
        "no TCP listener asked for: {:?}",
        h.binds
    );
    h.fresh();
    h
}

fn accept(h: &mut Harness, conn: u64) -> ConnId {
    let conn = ConnId(conn);
    let endpoint = h.endpoint(EP);
    h.input(Input::Accepted {
        endpoint,
        conn,
        peer: format!("127.0.0.1:{}", 40000 + conn.0),
    });
    conn
}

fn data(h: &mut Harness, conn: ConnId, bytes: &[u8]) {
    h.input(Input::ConnData {
        conn,
        bytes: Bytes::copy_from_slice(bytes),
    });
}

/// What was written to `conn` in these outputs, as text, and whether it was closed (last).
fn written(outputs: &[Output], conn: ConnId) -> (String, bool) {
    let mut bytes = Vec::new();
    let mut closed = false;
    for o in outputs {
        match o {
            Output::ConnSend { conn: c, bytes: b } if *c == conn => {
                assert!(!closed, "bytes written to {conn} after its close");
                bytes.extend_from_slice(b);
            }
            Output::ConnClose { conn: c } if *c == conn => closed = true,
            _ => {}
        }
    }
    (String::from_utf8(bytes).unwrap(), closed)
}

fn status_of(text: &str) -> u16 {
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_request_is_a_job_with_meta_http_and_its_reply_a_200() {
    let mut h = setup("", "", Answer::Echo);
    let c = accept(&mut h, 1);
    data(
        &mut h,
        c,
        b"POST /users/7?x=1 HTTP/1.1\r\nHost: a\r\nX-Tag: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    let (text, closed) = written(&h.fresh(), c);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
    assert!(text.contains("content-length: 5\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\nhello"), "{text:?}");
    assert!(!closed, "keep-alive is the HTTP/1.1 default");
    let (w, sid) = h.invokes[0];
    let messages = h.worker(w).messages_no_heartbeat();
    let WorkerMessage::Invoke {
        sid: s,
        event,
        meta,
    } = &messages[0]
    else {
        panic!("expected an invoke, got {:?}", messages[0]);
    };
    assert_eq!(
        (*s, event.as_str()),
        (sid, "web"),
        "no routes: the task's event"
    );
    assert_eq!(meta.peer.as_deref(), Some("127.0.0.1:40001"));
    let http = meta.http.as_ref().expect("meta.http");
    assert_eq!(
        (
            http.method.as_str(),
            http.path.as_str(),
            http.query.as_str()
        ),
        ("POST", "/users/7", "x=1")
    );
    assert!(http.headers.contains(&("x-tag".to_owned(), "t".to_owned())));
}

#[test]
fn routes_choose_the_event_and_no_route_is_404_without_a_job() {
    let routes = r#", "routes": {"/api": "api", "/": "home"}"#;
    let mut h = setup(routes, "", Answer::Echo);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n");
    data(&mut h, c, b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n");
    let events: Vec<String> = (h.invokes.iter())
        .filter_map(|(w, sid)| {
            h.worker(*w).messages().into_iter().find_map(|m| match m {
                WorkerMessage::Invoke { sid: s, event, .. } if s == *sid => Some(event),
                _ => None,
            })
        })
        .collect();
    assert_eq!(events, ["api", "home"]);

    let mut h = setup(r#", "routes": {"/api": "api"}"#, "", Answer::Echo);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"GET /apis HTTP/1.1\r\nHost: a\r\n\r\n");
    let (text, closed) = written(&h.fresh(), c);
    assert_eq!((status_of(&text), closed), (404, false), "{text:?}");
    assert!(h.invokes.is_empty(), "a job for a path with no route");
}

#[test]
fn pipelined_replies_keep_request_order_with_the_handlers_head() {
    let mut h = setup("", r#""pool-limit": 1, "concurrency": 3"#, Answer::Manual);
    let c = accept(&mut h, 1);
    data(
        &mut h,
        c,
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(h.invokes.len(), 2);
    let sids = h.invokes.clone();
    h.fresh();
    let head = ReplyHead {
        status: 201,
        headers: vec![("x-second".to_owned(), "yes".to_owned())],
    };
    h.worker_says(
        sids[1].0,
        &[
            WorkerMessage::Head {
                sid: sids[1].1,
                head,
            },
            WorkerMessage::Chunk {
                sid: sids[1].1,
                data: b(b"two"),
            },
            WorkerMessage::Choke { sid: sids[1].1 },
        ],
    );
    assert_eq!(written(&h.fresh(), c).0, "", "a later reply went first");
    h.worker_replies(sids[0].0, sids[0].1, &[b"one,", b"more"]);
    let (text, _) = written(&h.fresh(), c);
    let second = text.find("HTTP/1.1 201").expect("the second response");
    let (first, second) = text.split_at(second);
    assert!(first.starts_with("HTTP/1.1 200"), "{first:?}");
    assert!(first.contains("transfer-encoding: chunked"), "{first:?}");
    assert!(
        first.contains("one,") && first.contains("more"),
        "{first:?}"
    );
    assert!(second.contains("x-second: yes\r\n"), "{second:?}");
    assert!(second.ends_with("\r\n\r\ntwo"), "{second:?}");
}

/// The `Output::ConnReading` switches in these outputs for `conn`, in order.
fn reading_switches(outputs: &[Output], conn: ConnId) -> Vec<bool> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::ConnReading { conn: c, on } if *c == conn => Some(*on),
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_pipeline_pauses_reading_until_a_reply_makes_room() {
    let mut h = setup("", r#""pool-limit": 1, "concurrency": 64"#, Answer::Manual);
    let c = accept(&mut h, 1);
    let limit = cocaine_core::http::conn::MAX_IN_FLIGHT;
    let pipelined = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n".repeat(limit + 3);
    data(&mut h, c, &pipelined);
    assert_eq!(h.invokes.len(), limit, "one job per pipeline place");
    assert_eq!(
        reading_switches(&h.fresh(), c),
        [false],
        "a full pipeline stops reading the socket"
    );
    let first = h.invokes[0];
    h.worker_replies(first.0, first.1, &[b"one"]);
    let outputs = h.fresh();
    assert!(written(&outputs, c).0.starts_with("HTTP/1.1 200"));
    // The reply made room for one buffered request, which fills the pipeline again.
    assert_eq!(h.invokes.len(), limit + 1);
    assert_eq!(reading_switches(&outputs, c), Vec::<bool>::new());
    let mut answered = 1;
    while answered < limit + 3 {
        let (w, sid) = h.invokes[answered];
        h.worker_replies(w, sid, &[b"more"]);
        answered += 1;
        let outputs = h.fresh();
        let switches = reading_switches(&outputs, c);
        if answered == 4 {
            assert_eq!(
                switches,
                [true],
                "room again, and nothing buffered: read on"
            );
        } else {
            assert!(switches.is_empty(), "{answered}: {switches:?}");
        }
    }
    assert_eq!(
        h.invokes.len(),
        limit + 3,
        "every pipelined request ran once"
    );
}

#[test]
fn a_chunked_body_reaches_the_worker_piece_by_piece() {
    let mut h = setup("", "", Answer::Manual);
    let c = accept(&mut h, 1);
    data(
        &mut h,
        c,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    );
    let (w, sid) = h.invokes[0];
    let chunks = |h: &Harness| -> Vec<Bytes> {
        (h.worker(w).messages().into_iter())
            .filter_map(|m| match m {
                WorkerMessage::Chunk { sid: s, data } if s == sid => Some(data),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        chunks(&h),
        [b(b"abc")],
        "the first piece waits for the rest"
    );
    data(&mut h, c, b"2\r\nde\r\n0\r\n\r\n");
    assert_eq!(chunks(&h), [b(b"abc"), b(b"de")]);
    assert!(
        (h.worker(w).messages().iter())
            .any(|m| matches!(m, WorkerMessage::Choke { sid: s } if *s == sid)),
        "the request did not end"
    );
}

#[test]
fn engine_errors_become_statuses() {
    for (code, status) in [(502, 502), (500, 500), (504, 504), (404, 404), (7, 500)] {
        let mut h = setup("", "", Answer::Fail(code, "no".into()));
        let c = accept(&mut h, 1);
        data(&mut h, c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (text, _) = written(&h.fresh(), c);
        assert_eq!(status_of(&text), status, "code {code}: {text:?}");
    }
}

#[test]
fn a_full_queue_is_503_in_turn() {
    let mut h = setup("", r#""pool-limit": 1, "queue-limit": 1"#, Answer::Manual);
    let c = accept(&mut h, 1);
    for path in ["/runs", "/waits", "/refused"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        data(&mut h, c, request.as_bytes());
    }
    assert_eq!(
        written(&h.fresh(), c).0,
        "",
        "the 503 went before earlier replies"
    );
    let (w, sid) = h.invokes[0];
    h.worker_replies(w, sid, &[b"one"]);
    let (w, sid) = h.invokes[1];
    h.worker_replies(w, sid, &[b"two"]);
    let (text, _) = written(&h.fresh(), c);
    let statuses: Vec<u16> = text
        .split("HTTP/1.1")
        .skip(1)
        .map(|r| status_of(&format!("H{r}")))
        .collect();
    assert_eq!(statuses, [200, 200, 503], "{text:?}");
}

#[test]
fn limits_give_413_and_431_and_close() {
    let mut h = setup(r#", "max-body": 4, "max-header": 64"#, "", Answer::Echo);
    let c = accept(&mut h, 1);
    data(
        &mut h,
        c,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    );
    let (text, closed) = written(&h.fresh(), c);
    assert_eq!((status_of(&text), closed), (413, true), "{text:?}");
    let c = accept(&mut h, 2);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "y".repeat(100)
    );
    data(&mut h, c, big.as_bytes());
    let (text, closed) = written(&h.fresh(), c);
    assert_eq!((status_of(&text), closed), (431, true), "{text:?}");
    let c = accept(&mut h, 3);
    data(&mut h, c, b"\x00\x01garbage\r\n\r\n");
    let (text, closed) = written(&h.fresh(), c);
    assert_eq!((status_of(&text), closed), (400, true), "{text:?}");
    assert!(h.invokes.is_empty());
}

#[test]
fn a_client_that_never_finishes_its_head_gets_408_after_header_timeout() {
    let mut h = setup(r#", "header-timeout": 500"#, "", Answer::Echo);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"GET / HTTP/1.1\r\nHo");
    h.advance(Duration::from_millis(499));
    assert_eq!(written(&h.fresh(), c), (String::new(), false));
    h.advance(Duration::from_millis(1));
    let (text, closed) = written(&h.fresh(), c);
    assert_eq!((status_of(&text), closed), (408, true), "{text:?}");
    // An idle keep-alive connection closes silently after the same time.
    let c = accept(&mut h, 2);
    data(&mut h, c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    h.fresh();
    h.advance(Duration::from_millis(500));
    assert_eq!(written(&h.fresh(), c), (String::new(), true));
}

#[test]
fn a_client_that_leaves_cancels_its_job() {
    let mut h = setup("", "", Answer::Manual);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let (w, sid) = h.invokes[0];
    h.input(Input::ConnEof { conn: c });
    let out = h.fresh();
    assert!(written(&out, c).1, "the connection was not closed");
    assert!(
        (h.worker(w).messages().iter())
            .any(|m| matches!(m, WorkerMessage::Cancel { sid: s } if *s == sid)),
        "the worker was not told to cancel"
    );
    // Its late reply writes nothing.
    h.worker_replies(w, sid, &[b"late"]);
    assert_eq!(written(&h.fresh(), c).0, "");
}

#[test]
fn a_redeploy_keeps_connections_open_and_replies_in_order() {
    let mut h = setup("", r#""pool-limit": 1, "concurrency": 2"#, Answer::Manual);
    let c = accept(&mut h, 1);
    data(&mut h, c, b"GET /old HTTP/1.1\r\nHost: a\r\n\r\n");
    let (w_old, sid_old) = h.invokes[0];
    let binds = h.binds.len();
    h.deploy("web", &app_json(r#", "max-body": 2"#, "", 2));
    assert_eq!(h.binds.len(), binds, "the shared listener was bound again");
    data(&mut h, c, b"GET /new HTTP/1.1\r\nHost: a\r\n\r\n");
    let (w_new, sid_new) = *h.invokes.last().unwrap();
    assert_ne!(w_new, w_old, "the new request went to the old version");
    h.fresh();
    h.worker_replies(w_new, sid_new, &[b"from new"]);
    assert_eq!(written(&h.fresh(), c).0, "", "out of order");
    h.worker_replies(w_old, sid_old, &[b"from old"]);
    let (text, closed) = written(&h.fresh(), c);
    assert!(!closed);
    let old = text.find("from old").expect("old reply");
    let new = text.find("from new").expect("new reply");
    assert!(old < new, "{text:?}");
    // The new version's settings apply to the connection's next requests.
    data(
        &mut h,
        c,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
    );
    let (text, _) = written(&h.fresh(), c);
    assert_eq!(status_of(&text), 413, "{text:?}");
}

fn problems(extra: &str) -> String {
    match Manifest::parse("shop", app_json(extra, "", 1).as_bytes(), None) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_manifest_checks_the_keys_and_names_them() {
    assert_eq!(problems(r#", "routes": {"/a": "a"}, "timeout": 300"#), "");
    let bad = problems(r#", "max-body": -1"#);
    assert!(
        bad.contains("shop") && bad.contains("tasks.web.max-body"),
        "{bad}"
    );
    let bad = problems(r#", "routes": {"api": "x"}"#);
    assert!(bad.contains("tasks.web.routes.api"), "{bad}");
    let bad = problems(r#", "header-timeout": "soon""#);
    assert!(bad.contains("tasks.web.header-timeout"), "{bad}");
    let bad = problems(r#", "max-headers": 10"#);
    assert!(
        bad.contains("tasks.web.max-headers") && bad.contains("max-header"),
        "{bad}"
    );
    let json = app_json("", "", 1).replace("tcp://127.0.0.1:9400", "ipc:///tmp/web");
    let bad = Manifest::parse("shop", json.as_bytes(), None)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("TCP only"), "{bad}");
}
