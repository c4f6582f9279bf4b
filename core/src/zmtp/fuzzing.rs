//! The property the `zmtp_stream` fuzz target checks, kept here so that `cargo test` replays
//! its corpus (`core/tests/zmtp.rs`). Panics on purpose: that is how a fuzzer learns.

use bytes::{Bytes, BytesMut};

use super::{encode_command, Command, Connection, ZmtpError};

/// The limit the check uses: small, so fuzzed inputs reach `TooLarge`.
pub const FUZZ_MAX_MESSAGE: usize = 4096;

/// A valid greeting and READY from a DEALER, which a fuzzed stream may start with so that it
/// reaches the frames behind the handshake.
pub fn dealer_handshake() -> Vec<u8> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&super::greeting::ours());
    let ready = vec![("Socket-Type".to_owned(), Bytes::from_static(b"DEALER"))];
    encode_command(&Command::Ready(ready), &mut out);
    out.to_vec()
}

/// What a connection made of a stream: messages, the error that ended it (or the one
/// [`Connection::finish`] reports), and every byte it asked to write.
pub type Outcome = (Vec<Vec<Bytes>>, Option<ZmtpError>, Vec<u8>);

/// Feeds `stream` in pieces whose sizes cycle through `sizes`, polling after each.
pub fn run(stream: &[u8], sizes: &[usize], max_message: usize) -> Outcome {
    let mut conn = Connection::new(max_message);
    let mut messages = Vec::new();
    let mut written = Vec::new();
    let mut error = None;
    let mut at = 0;
    let mut i = 0;
    'feed: while at < stream.len() {
        let n = sizes[i % sizes.len()].max(1).min(stream.len() - at);
        i += 1;
        conn.push(&stream[at..at + n]);
        at += n;
        loop {
            match conn.poll() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
        // Write as a host would, between reads: what is written must not depend on when.
        written.extend_from_slice(conn.pending());
        let n = conn.pending().len();
        conn.written(n);
    }
    if error.is_none() {
        error = conn.finish().err();
    }
    written.extend_from_slice(conn.pending());
    (messages, error, written)
}

/// The first byte: bits 0-2 how many of the next bytes are split sizes, bit 3 whether a
/// valid DEALER handshake goes before the rest. Whole and split must agree, and every
/// message must be within the limit.
///
/// # Panics
///
/// When a property fails.
pub fn check_zmtp_stream(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(head & 7).min(rest.len());
    let (sizes, body) = rest.split_at(count);
    let mut stream = if head & 8 != 0 {
        dealer_handshake()
    } else {
        Vec::new()
    };
    stream.extend_from_slice(body);
    let sizes: Vec<usize> = if sizes.is_empty() {
        vec![1]
    } else {
        sizes.iter().map(|&s| usize::from(s) + 1).collect()
    };
    let whole = run(&stream, &[stream.len().max(1)], FUZZ_MAX_MESSAGE);
    let split = run(&stream, &sizes, FUZZ_MAX_MESSAGE);
    assert_eq!(
        whole, split,
        "the outcome depends on how the stream was split"
    );
    for message in &whole.0 {
        let wire: usize = message.iter().map(|f| f.len() + 2).sum();
        assert!(
            wire <= FUZZ_MAX_MESSAGE,
            "a message over the limit got through"
        );
        assert!(!message.is_empty());
    }
}
