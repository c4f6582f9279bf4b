//! One HTTP connection end to end, without sockets: requests in (in any split), events out,
//! replies in, bytes out; pipelining order, chunked both ways, 1.0 against 1.1, every error
//! status, the header timeout and a client leaving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cocaine_core::http::fuzzing::{check_http_stream, run, Seen};
use cocaine_core::http::{HttpConfig, HttpConn, HttpEvent, ReplyHead};
use proptest::prelude::*;

fn config() -> HttpConfig {
    HttpConfig::with_defaults(1024)
}

fn conn_with(config: HttpConfig) -> (HttpConn, Instant) {
    let now = Instant::now();
    (HttpConn::new(Arc::new(config), Arc::from("web"), now), now)
}

fn conn() -> (HttpConn, Instant) {
    conn_with(config())
}

fn out(conn: &mut HttpConn) -> String {
    String::from_utf8(conn.take_output().to_vec()).expect("responses here are text")
}

fn requests(events: &[HttpEvent]) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Request(r) => Some((r.seq, r.event.to_string(), r.head.path.clone())),
            _ => None,
        })
        .collect()
}

fn body_of(events: &[HttpEvent], seq: u64) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::BodyChunk { seq: s, bytes } if *s == seq => Some(bytes.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn ended(events: &[HttpEvent], seq: u64) -> bool {
    events.contains(&HttpEvent::RequestEnd { seq })
}

fn rejected(events: &[HttpEvent]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Rejected { status, .. } => Some(*status),
            _ => None,
        })
        .collect()
}

#[test]
fn get_becomes_a_job_with_meta_and_a_one_chunk_reply_has_a_length() {
    let (mut c, now) = conn();
    let events = c.feed(
        b"GET /users/7?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nX-Thing: \xe9t\xe9\r\n\r\n",
        now,
    );
    let HttpEvent::Request(r) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!((r.seq, &*r.event), (0, "web"));
    let meta = r.meta();
    assert_eq!(meta.method, "GET");
    assert_eq!(meta.path, "/users/7");
    assert_eq!(meta.query, "x=1&y=%20");
    assert_eq!(meta.version, "1.1");
    // Names lowercase; a value that is not UTF-8 is read as Latin-1.
    assert_eq!(
        meta.headers,
        vec![
            ("host".to_owned(), "a".to_owned()),
            ("x-thing".to_owned(), "été".to_owned())
        ]
    );
    assert_eq!(r.origin(Some("1.2.3.4:5".into())).http, Some(meta));
    assert!(ended(&events, 0));
    assert!(c.reply_chunk(0, Bytes::from_static(b"hi"), now).is_empty());
    assert_eq!(
        out(&mut c),
        "",
        "one chunk waits: it may be the whole reply"
    );
    c.reply_end(0, now);
    assert_eq!(
        out(&mut c),
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    );
    assert!(!c.is_closed());
}

#[test]
fn handler_head_sets_status_and_headers_but_not_framing() {
    let (mut c, now) = conn();
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
    let head = ReplyHead {
        status: 201,
        headers: vec![
            ("Content-Type".into(), "text/plain".into()),
            ("Content-Length".into(), "999".into()),
            ("Connection".into(), "close".into()),
        ],
    };
    c.reply_head(0, head, now);
    c.reply_head(
        0,
        ReplyHead {
            status: 500,
            headers: vec![],
        },
        now,
    ); // a second head is ignored
    c.reply_chunk(0, Bytes::from_static(b"made"), now);
    c.reply_end(0, now);
    assert_eq!(
        out(&mut c),
        "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\ncontent-length: 4\r\n\r\nmade"
    );
    assert!(!c.is_closed());
}

#[test]
fn several_chunks_are_chunked_for_1_1_and_close_delimited_for_1_0() {
    let (mut c, now) = conn();
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
    c.reply_chunk(0, Bytes::from_static(b"hello "), now);
    c.reply_chunk(0, Bytes::from_static(b"world"), now);
    assert_eq!(
        out(&mut c),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n"
    );
    c.reply_chunk(0, Bytes::from_static(&[b'x'; 26]), now);
    c.reply_end(0, now);
    assert_eq!(
        out(&mut c),
        format!("1a\r\n{}\r\n0\r\n\r\n", "x".repeat(26))
    );
    assert!(!c.is_closed());

    let (mut c, now) = conn();
    c.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", now);
    c.reply_chunk(0, Bytes::from_static(b"a"), now);
    c.reply_chunk(0, Bytes::from_static(b"b"), now);
    c.reply_end(0, now);
    assert_eq!(
        out(&mut c),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nab"
    );
    assert!(
        c.is_closed(),
        "a body without a length ends with the connection"
    );
}

#[test]
fn keep_alive_rules_per_version() {
    let cases: [(&[u8], bool, &str); 5] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, ""),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
            "connection: close\r\n",
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false, "connection: close\r\n"),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            true,
            "connection: keep-alive\r\n",
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            false,
            "connection: close\r\n",
        ),
    ];
    for (request, keep, header) in cases {
        let (mut c, now) = conn();
        c.feed(request, now);
        c.reply_end(0, now);
        assert_eq!(
            out(&mut c),
            format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{header}\r\n"),
            "{}",
            String::from_utf8_lossy(request)
        );
        assert_eq!(c.is_closed(), !keep);
    }
}

#[test]
fn pipelined_replies_go_out_in_request_order() {
    let (mut c, now) = conn();
    let events = c.feed(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
    );
    assert_eq!(requests(&events).len(), 3);
    // The last finishes first, then the middle one streams: both wait for the first.
    c.reply_chunk(2, Bytes::from_static(b"three"), now);
    c.reply_end(2, now);
    c.reply_chunk(1, Bytes::from_static(b"tw"), now);
    c.reply_chunk(1, Bytes::from_static(b"o"), now);
    assert_eq!(out(&mut c), "");
    c.reply_chunk(0, Bytes::from_static(b"one"), now);
    c.reply_end(0, now);
    assert_eq!(
        out(&mut c),
        "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none\
         HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\ntw\r\n1\r\no\r\n"
    );
    c.reply_end(1, now);
    assert_eq!(
        out(&mut c),
        "0\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nthree"
    );
}

#[test]
fn a_full_pipeline_reads_no_further_request_until_a_reply() {
    let (mut c, now) = conn();
    let one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let stream: Vec<u8> = one.repeat(20);
    let events = c.feed(&stream, now);
    let max = cocaine_core::http::conn::MAX_IN_FLIGHT;
    assert_eq!(requests(&events).len(), max);
    assert!(!c.wants_read());
    assert_eq!(
        c.header_deadline(),
        None,
        "buffered heads wait for room, not for the client"
    );
    let events = c.reply_end(0, now);
    assert_eq!(
        requests(&events),
        vec![(max as u64, "web".into(), "/".into())]
    );
}

#[test]
fn content_length_body_arrives_in_pieces() {
    let (mut c, now) = conn();
    let events = c.feed(
        b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123",
        now,
    );
    assert_eq!(body_of(&events, 0), b"0123");
    assert!(!ended(&events, 0));
    let events = c.feed(b"456789GET /next HTTP/1.1\r\nHost: a\r\n\r\n", now);
    assert_eq!(body_of(&events, 0), b"456789");
    assert!(ended(&events, 0));
    assert_eq!(requests(&events), vec![(1, "web".into(), "/next".into())]);
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let (mut c, now) = conn();
    let events = c.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Sum: 1\r\n\r\n",
        now,
    );
    assert_eq!(body_of(&events, 0), b"hello, chunked!");
    assert!(ended(&events, 0));
    assert!(!c.is_closed());
}

#[test]
fn expect_100_continue_is_sent_before_the_body_and_not_after_a_reply() {
    let (mut c, now) = conn();
    c.feed(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        now,
    );
    assert_eq!(out(&mut c), "HTTP/1.1 100 Continue\r\n\r\n");
    let events = c.feed(b"abc", now);
    assert_eq!(body_of(&events, 0), b"abc");
    c.reply_end(0, now);
    assert_eq!(out(&mut c), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");

    // Over max-body: 413 at once, no 100, and the connection closes.
    let (mut c, now) = conn();
    let events = c.feed(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
        now,
    );
    assert_eq!(rejected(&events), vec![413]);
    assert!(out(&mut c).starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    assert!(c.is_closed());

    // An expectation we do not know: 417.
    let (mut c, now) = conn();
    let events = c.feed(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", now);
    assert_eq!(rejected(&events), vec![417]);
}

#[test]
fn routes_pick_the_longest_prefix_and_no_route_is_404_in_order() {
    let mut config = config();
    config.routes = Some(
        [
            ("/api", "api"),
            ("/api/admin", "admin"),
            ("/static/", "files"),
        ]
        .iter()
        .map(|(p, e)| ((*p).to_owned(), Arc::from(*e)))
        .collect(),
    );
    let (mut c, now) = conn_with(config);
    let events = c.feed(
        b"GET /api/admin/x HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /apis HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /nothing HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nzz\
          GET /api HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /static/a.css HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
    );
    assert_eq!(
        requests(&events),
        vec![
            (0, "admin".into(), "/api/admin/x".into()),
            (3, "api".into(), "/api".into()),
            (4, "files".into(), "/static/a.css".into()),
        ]
    );
    assert_eq!(rejected(&events), vec![404, 404]);
    assert_eq!(out(&mut c), "", "the 404s wait for request 0");
    for seq in [0, 3, 4] {
        c.reply_end(seq, now);
    }
    let text = out(&mut c);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3);
    assert_eq!(text.matches("HTTP/1.1 404 Not Found").count(), 2);
    assert!(text.find("200 OK").unwrap() < text.find("404").unwrap());
    assert!(!c.is_closed());
}

#[test]
fn engine_errors_become_statuses() {
    for (code, status) in [
        (400, "400 Bad Request"),
        (404, "404 Not Found"),
        (413, "413 Content Too Large"),
        (500, "500 Internal Server Error"),
        (502, "502 Bad Gateway"),
        (503, "503 Service Unavailable"),
        (504, "504 Gateway Timeout"),
        (520, "504 Gateway Timeout"),
        (7, "500 Internal Server Error"),
    ] {
        let (mut c, now) = conn();
        c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
        c.reply_error(0, code, "secret\r\ntrace", now);
        let text = out(&mut c);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{code}: {text}"
        );
        // A client error tells the client why (on one line); a server error does not.
        assert_eq!(
            text.contains("secret  trace"),
            status.starts_with('4'),
            "{code}: {text}"
        );
        assert!(!c.is_closed());
    }
    // 499: the job was cancelled; nobody waits for an answer.
    let (mut c, now) = conn();
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
    c.reply_error(0, 499, "cancelled", now);
    assert_eq!(out(&mut c), "");
    assert!(c.is_closed());
}

#[test]
fn an_error_after_the_reply_started_closes_without_the_last_chunk() {
    let (mut c, now) = conn();
    c.feed(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
    );
    c.reply_chunk(0, Bytes::from_static(b"a"), now);
    c.reply_chunk(0, Bytes::from_static(b"b"), now);
    let events = c.reply_error(0, 502, "boom", now);
    assert_eq!(events, vec![HttpEvent::Cancel { seq: 1 }]);
    let text = out(&mut c);
    assert!(text.ends_with("1\r\nb\r\n"), "{text}");
    assert!(c.is_closed());
}

#[test]
fn malformed_heads_are_400_and_close() {
    let bad: [&[u8]; 12] = [
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n", // no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET nothing HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for request in bad {
        let (mut c, now) = conn();
        let events = c.feed(request, now);
        assert_eq!(
            rejected(&events),
            vec![400],
            "{}",
            String::from_utf8_lossy(request)
        );
        assert!(requests(&events).is_empty());
        let text = out(&mut c);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"));
        assert!(c.is_closed());
    }
}

#[test]
fn other_head_errors_have_their_own_statuses() {
    let cases: [(&[u8], u16); 3] = [
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
    ];
    for (request, status) in cases {
        let (mut c, now) = conn();
        assert_eq!(rejected(&c.feed(request, now)), vec![status]);
        assert!(c.is_closed());
    }
}

#[test]
fn oversized_heads_are_431() {
    let mut small = config();
    small.max_header = 64;
    // No end of head within the limit.
    let (mut c, now) = conn_with(small.clone());
    let events = c.feed(&[b'a'; 65], now);
    assert_eq!(rejected(&events), vec![431]);
    // A complete head over the limit.
    let (mut c, now) = conn_with(small);
    let events = c.feed(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789012345678901234567890123\r\n\r\n",
        now,
    );
    assert_eq!(rejected(&events), vec![431]);
    // Too many header fields.
    let (mut c, now) = conn();
    let mut request = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..200 {
        request.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let mut big = config();
    big.max_header = 1 << 20;
    let (mut c2, _) = conn_with(big);
    assert_eq!(rejected(&c2.feed(&request, now)), vec![431]);
    assert!(out(&mut c2).starts_with("HTTP/1.1 431 Request Header Fields Too Large"));
    let _ = &mut c;
}

#[test]
fn body_errors_cancel_the_job_and_close() {
    let hostile: [&[u8]; 6] = [
        b"1x\r\n",                 // not hex
        b"5\nhello\r\n",           // bare LF
        b"11111111111111111\r\n",  // 17 hex digits
        b" 5\r\nhello\r\n",        // space before the size
        b"5\r\nhelloXX",           // no CRLF after the data
        b"0\r\nX-T: \x01\r\n\r\n", // control character in a trailer
    ];
    for body in hostile {
        let (mut c, now) = conn();
        let mut request =
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(body);
        let events = c.feed(&request, now);
        assert_eq!(
            rejected(&events),
            vec![400],
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(events.contains(&HttpEvent::Cancel { seq: 0 }));
        assert!(out(&mut c).starts_with("HTTP/1.1 400 Bad Request"));
        assert!(c.is_closed());
        // The job's late replies are dropped.
        assert!(c.reply_end(0, now).is_empty());
        assert_eq!(out(&mut c), "");
    }
    // A chunked body that grows past max-body: 413.
    let (mut c, now) = conn();
    let events = c.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n",
        now,
    );
    assert!(rejected(&events).is_empty(), "1024 bytes fit");
    let events = c.feed(&[b'z'; 1024], now);
    assert_eq!(body_of(&events, 0).len(), 1024);
    let events = c.feed(b"\r\n1\r\n", now);
    assert_eq!(rejected(&events), vec![413]);
    assert!(out(&mut c).starts_with("HTTP/1.1 413 "));
    // A huge declared chunk is refused before any of it arrives.
    let (mut c, now) = conn();
    let events = c.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        now,
    );
    assert_eq!(rejected(&events), vec![413]);
}

#[test]
fn head_requests_get_the_length_and_no_body() {
    let (mut c, now) = conn();
    c.feed(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", now);
    c.reply_chunk(0, Bytes::from_static(b"abc"), now);
    c.reply_chunk(0, Bytes::from_static(b"de"), now);
    assert_eq!(out(&mut c), "");
    c.reply_end(0, now);
    assert_eq!(out(&mut c), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
}

#[test]
fn no_body_statuses_have_no_body() {
    let (mut c, now) = conn();
    c.feed(b"DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n", now);
    c.reply_head(
        0,
        ReplyHead {
            status: 204,
            headers: vec![],
        },
        now,
    );
    c.reply_chunk(0, Bytes::from_static(b"ignored"), now);
    c.reply_end(0, now);
    assert_eq!(out(&mut c), "HTTP/1.1 204 No Content\r\n\r\n");
}

#[test]
fn absolute_form_and_asterisk_targets() {
    let (mut c, now) = conn();
    let events = c.feed(
        b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n\
          OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n\r\n\r\nGET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
        now,
    );
    let heads: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Request(r) => Some((r.head.path.clone(), r.head.query.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        heads,
        vec![
            ("/p".into(), "q".into()),
            ("*".into(), String::new()),
            ("/".into(), String::new())
        ]
    );
}

#[test]
fn header_timeout_closes_a_slow_head_with_408_and_an_idle_connection_quietly() {
    let mut cfg = config();
    cfg.header_timeout = Duration::from_millis(100);
    let (mut c, now) = conn_with(cfg.clone());
    assert_eq!(c.header_deadline(), Some(now + Duration::from_millis(100)));
    c.feed(b"GET / HTTP/1.1\r\nHo", now + Duration::from_millis(50));
    assert!(c.timeout(now + Duration::from_millis(99)).is_empty());
    assert!(!c.is_closed());
    let events = c.timeout(now + Duration::from_millis(100));
    assert_eq!(rejected(&events), vec![408]);
    assert!(out(&mut c).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    assert!(c.is_closed());

    // Idle after a reply: the deadline counts from the reply; closing writes nothing.
    let (mut c, now) = conn_with(cfg.clone());
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now);
    assert_eq!(c.header_deadline(), None, "a reply is owed: no timeout");
    let later = now + Duration::from_secs(5);
    c.reply_end(0, later);
    out(&mut c);
    assert_eq!(
        c.header_deadline(),
        Some(later + Duration::from_millis(100))
    );
    c.timeout(later + Duration::from_millis(100));
    assert_eq!(out(&mut c), "");
    assert!(c.is_closed());

    // A slow next head while a reply is owed: no new request, close after the reply.
    let (mut c, now) = conn_with(cfg);
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2", now);
    let deadline = c.header_deadline().expect("a started head is timed");
    let events = c.timeout(deadline);
    assert!(events.is_empty());
    assert!(!c.is_closed());
    c.reply_end(0, deadline);
    assert!(out(&mut c).starts_with("HTTP/1.1 200 OK"));
    assert!(c.is_closed());
}

#[test]
fn a_redeploy_changes_routes_for_later_requests_only() {
    let (mut c, now) = conn();
    let events = c.feed(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", now);
    assert_eq!(requests(&events), vec![(0, "web".into(), "/a".into())]);
    let mut routed = config();
    routed.routes = Some([("/b".to_owned(), Arc::from("bee"))].into_iter().collect());
    c.reconfigure(Arc::new(routed), Arc::from("web2"));
    let events = c.feed(
        b"GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        now,
    );
    assert_eq!(requests(&events), vec![(1, "bee".into(), "/b".into())]);
    assert_eq!(rejected(&events), vec![404]);
    c.reply_end(0, now);
    c.reply_end(1, now);
    let text = out(&mut c);
    assert_eq!(text.matches("200 OK").count(), 2);
    assert!(
        text.ends_with("404 Not Found\nno route for this path\n"),
        "{text}"
    );
    assert!(!c.is_closed());
}

#[test]
fn a_client_that_leaves_cancels_its_jobs() {
    let (mut c, now) = conn();
    c.feed(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
        now,
    );
    c.reply_end(0, now);
    let events = c.eof();
    assert_eq!(events, vec![HttpEvent::Cancel { seq: 1 }]);
    assert!(c.is_closed());
    assert!(c.feed(b"more", now).is_empty());
}

#[test]
fn every_split_of_a_session_gives_the_same_events() {
    let stream: &[u8] = b"\r\nPOST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
        PUT /b?x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\nabc\r\n0\r\nT: 1\r\n\r\n\
        GET /c HTTP/1.0\r\n\r\n";
    let config = Arc::new(config());
    let now = Instant::now();
    let (whole, written) = run(&config, stream, &[stream.len()], now);
    assert_eq!(
        whole
            .iter()
            .filter(|s| matches!(s, Seen::Request { .. }))
            .count(),
        3
    );
    assert!(whole.contains(&Seen::Body {
        seq: 1,
        bytes: b"abc".to_vec()
    }));
    for cut in 1..stream.len() {
        let (a, b) = stream.split_at(cut);
        let (mut c, now) = (
            HttpConn::new(Arc::clone(&config), Arc::from("web"), now),
            now,
        );
        let mut events = c.feed(a, now);
        events.extend(c.feed(b, now));
        assert_eq!(requests(&events).len(), 3, "cut at {cut}");
        assert_eq!(body_of(&events, 0), b"hello", "cut at {cut}");
        assert_eq!(body_of(&events, 1), b"abc", "cut at {cut}");
    }
    for size in 1..8 {
        let (split, w) = run(&config, stream, &[size], now);
        assert_eq!(split, whole, "pieces of {size}");
        assert_eq!(w, written, "pieces of {size}");
    }
}

proptest! {
    #[test]
    fn prop_any_split_of_valid_requests_gives_the_same_events(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..5),
        chunked in proptest::collection::vec(any::<bool>(), 5),
        sizes in proptest::collection::vec(1usize..30, 1..6),
    ) {
        let mut stream = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            if chunked[i] {
                stream.extend_from_slice(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
                for piece in body.chunks(7) {
                    stream.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
                    stream.extend_from_slice(piece);
                    stream.extend_from_slice(b"\r\n");
                }
                stream.extend_from_slice(b"0\r\n\r\n");
            } else {
                stream.extend_from_slice(format!("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
                stream.extend_from_slice(body);
            }
        }
        let config = Arc::new(config());
        let now = Instant::now();
        let (whole, written) = run(&config, &stream, &[stream.len()], now);
        let (split, w) = run(&config, &stream, &sizes, now);
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(w, written);
        let got: Vec<Vec<u8>> = (0..bodies.len() as u64)
            .map(|seq| whole.iter().filter_map(|s| match s {
                Seen::Body { seq: q, bytes } if *q == seq => Some(bytes.clone()),
                _ => None,
            }).flatten().collect())
            .collect();
        prop_assert_eq!(got, bodies);
    }

    #[test]
    fn prop_arbitrary_bytes_keep_the_properties(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_http_stream(&data, Instant::now());
    }
}
