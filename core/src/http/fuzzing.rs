//! The property the `http_request` fuzz target checks, kept here so that `cargo test` can
//! replay its corpus (`tests/fuzz_corpus.rs`) and property tests can run it too.
//!
//! Like `codec::fuzzing`, this panics on purpose when a property fails.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::config::HttpConfig;
use super::conn::{HttpConn, HttpEvent};

/// What a connection reported, with body pieces joined per run, so that two splits of one
/// stream compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Request {
        seq: u64,
        event: String,
        method: String,
        path: String,
    },
    Body {
        seq: u64,
        bytes: Vec<u8>,
    },
    End {
        seq: u64,
    },
    Cancel {
        seq: u64,
    },
    Rejected {
        seq: u64,
        status: u16,
    },
}

/// A small configuration, so fuzzed inputs reach every limit.
pub fn fuzz_config(flags: u8) -> HttpConfig {
    let mut config = HttpConfig::with_defaults(if flags & 1 == 0 { 64 } else { 4096 });
    config.max_header = if flags & 2 == 0 { 256 } else { 8192 };
    if flags & 4 != 0 {
        let routes = [("/a", "alpha"), ("/a/b", "beta"), ("/", "root")];
        config.routes = Some(
            routes
                .iter()
                .map(|(p, e)| ((*p).to_owned(), Arc::from(*e)))
                .collect(),
        );
    }
    config
}

/// Feeds `stream` to a connection in pieces whose sizes cycle through `sizes`, answering
/// each request with one chunk (its path) once its body has ended (so that whether a reply
/// came before a body error cannot depend on the split); returns what the connection
/// reported and wrote.
pub fn run(
    config: &Arc<HttpConfig>,
    stream: &[u8],
    sizes: &[usize],
    now: Instant,
) -> (Vec<Seen>, Vec<u8>) {
    let mut conn = HttpConn::new(Arc::clone(config), Arc::from("web"), now);
    let mut seen = Vec::new();
    let mut written = Vec::new();
    let mut paths = std::collections::HashMap::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() && !conn.is_closed() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        let mut events = conn.feed(piece, now);
        while !events.is_empty() {
            let mut next = Vec::new();
            for event in events {
                if let HttpEvent::Request(r) = &event {
                    paths.insert(r.seq, Bytes::from(r.head.path.clone().into_bytes()));
                }
                if let HttpEvent::RequestEnd { seq } = event {
                    let path = paths.remove(&seq).unwrap_or_default();
                    next.extend(conn.reply_chunk(seq, path, now));
                    next.extend(conn.reply_end(seq, now));
                }
                record(&mut seen, event);
            }
            events = next;
        }
        written.extend_from_slice(&conn.take_output());
    }
    for event in conn.eof() {
        record(&mut seen, event);
    }
    written.extend_from_slice(&conn.take_output());
    (seen, written)
}

fn record(seen: &mut Vec<Seen>, event: HttpEvent) {
    let item = match event {
        HttpEvent::Request(r) => Seen::Request {
            seq: r.seq,
            event: r.event.to_string(),
            method: r.head.method,
            path: r.head.path,
        },
        HttpEvent::BodyChunk { seq, bytes } => {
            if let Some(Seen::Body { seq: s, bytes: b }) = seen.last_mut() {
                if *s == seq {
                    b.extend_from_slice(&bytes);
                    return;
                }
            }
            Seen::Body {
                seq,
                bytes: bytes.to_vec(),
            }
        }
        HttpEvent::RequestEnd { seq } => Seen::End { seq },
        HttpEvent::Cancel { seq } => Seen::Cancel { seq },
        HttpEvent::Rejected { seq, status, .. } => Seen::Rejected { seq, status },
    };
    seen.push(item);
}

/// Checks one HTTP byte stream. Byte 0: bits 0-2 say how many of the next bytes (0 to 7) are
/// split sizes, bits 3-5 pick a configuration ([`fuzz_config`]); the rest is the stream.
/// Fed whole and in pieces (one byte at a time when no sizes are given), the connection
/// must report the same requests, bodies and errors; bodies stay within `max-body`; every
/// body piece and end belongs to a request seen before; the output is HTTP responses.
///
/// # Panics
///
/// When a property fails.
pub fn check_http_stream(data: &[u8], now: Instant) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(head & 7).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let sizes: Vec<usize> = if sizes.is_empty() {
        vec![1]
    } else {
        sizes.iter().map(|&s| usize::from(s) + 1).collect()
    };
    let config = Arc::new(fuzz_config(head >> 3));
    let (whole, written) = run(&config, stream, &[stream.len().max(1)], now);
    let (split, _) = run(&config, stream, &sizes, now);
    assert_eq!(whole, split, "events depend on how the stream was split");
    check_events(&whole, config.max_body);
    assert!(
        written.is_empty() || written.starts_with(b"HTTP/1.1 "),
        "output is not an HTTP response"
    );
}

fn check_events(seen: &[Seen], max_body: usize) {
    let mut requests = std::collections::BTreeMap::new();
    let mut next = 0;
    for item in seen {
        match item {
            Seen::Request { seq, .. } => {
                assert!(*seq >= next, "request numbers go back");
                next = seq + 1;
                requests.insert(*seq, 0usize);
            }
            Seen::Body { seq, bytes } => {
                let total = requests.get_mut(seq).expect("body for an unknown request");
                *total += bytes.len();
                assert!(*total <= max_body, "body over max-body");
            }
            Seen::End { seq } => {
                assert!(
                    requests.remove(seq).is_some(),
                    "end of an unknown or ended request"
                );
            }
            Seen::Rejected { status, .. } => {
                assert!(
                    (400..600).contains(status),
                    "a rejection is an error status"
                );
            }
            Seen::Cancel { .. } => {}
        }
    }
}
