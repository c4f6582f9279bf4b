//! Property checks for fuzzing: the bodies of the `fuzz/` targets, kept here so that
//! `cargo test` can replay the committed corpus (`tests/fuzz_corpus.rs`) with the same checks.
//!
//! Unlike the rest of the core these functions panic, on purpose: a panic is how a fuzzer
//! learns that a property failed. Nothing outside fuzzing and tests should call them.

use bytes::{Bytes, BytesMut};

use super::frame::FrameDecoder;
use super::native::NativeMessage;
use super::raw::{RawError, RequestDecoder};
use super::worker::WorkerMessage;
use super::DecodeError;

/// The size limit the checks use: small, so that fuzzed inputs can reach `TooLarge`.
pub const FUZZ_MAX_MESSAGE: usize = 64 * 1024;

/// Checks the worker channel on a byte stream.
///
/// The first byte of `data` says how many of the next bytes (0 to 7) are split sizes; the rest
/// is the stream. Fed to a [`FrameDecoder`] whole and in pieces of those sizes (one byte at a
/// time when there are none), it must yield the same frames and errors; every frame is then
/// decoded, and every message decoded must re-encode to bytes that decode to the same message.
///
/// # Panics
///
/// When a property fails.
pub fn check_worker_stream(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let whole = frames(stream, &[stream.len()]);
    let sizes: Vec<usize> = if sizes.is_empty() {
        vec![1]
    } else {
        sizes.iter().map(|&s| usize::from(s) + 1).collect()
    };
    let split = frames(stream, &sizes);
    assert_eq!(whole, split, "frames depend on how the stream was split");
    for frame in whole.iter().filter_map(|f| f.as_ref().ok()) {
        check_worker_frame(frame);
    }
}

/// Frames (and the error that ended them, if any) from `stream` pushed in pieces whose sizes
/// cycle through `sizes`.
fn frames(stream: &[u8], sizes: &[usize]) -> Vec<Result<Bytes, DecodeError>> {
    split_decode(FrameDecoder::new(FUZZ_MAX_MESSAGE), stream, sizes)
}

/// A streaming decoder: bytes in, in any split; items out, then at most one error, after
/// which it keeps returning that error (it is poisoned).
trait Streaming {
    type Error: Clone + PartialEq + std::fmt::Debug;
    fn push(&mut self, bytes: &[u8]);
    fn next_item(&mut self) -> Result<Option<Bytes>, Self::Error>;
}

impl Streaming for FrameDecoder {
    type Error = DecodeError;
    fn push(&mut self, bytes: &[u8]) {
        FrameDecoder::push(self, bytes);
    }
    fn next_item(&mut self) -> Result<Option<Bytes>, DecodeError> {
        self.next_frame()
    }
}

impl Streaming for RequestDecoder {
    type Error = RawError;
    fn push(&mut self, bytes: &[u8]) {
        RequestDecoder::push(self, bytes);
    }
    fn next_item(&mut self) -> Result<Option<Bytes>, RawError> {
        self.next_request()
    }
}

/// Pushes `stream` into a decoder in pieces whose sizes cycle through `sizes` and collects
/// everything it yields, up to and including the error that ends it.
fn split_decode<D: Streaming>(
    mut decoder: D,
    stream: &[u8],
    sizes: &[usize],
) -> Vec<Result<Bytes, D::Error>> {
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.clamp(1, rest.len()));
        rest = tail;
        decoder.push(piece);
        loop {
            match decoder.next_item() {
                Ok(Some(item)) => out.push(Ok(item)),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.next_item(), Err(e.clone()), "decoder not poisoned");
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

/// Checks one worker frame body: both decoders agree, and a decoded message round-trips.
///
/// # Panics
///
/// When a property fails.
pub fn check_worker_frame(body: &Bytes) {
    let copied = WorkerMessage::decode(body);
    let shared = WorkerMessage::decode_bytes(body);
    assert_eq!(copied, shared, "decode and decode_bytes disagree");
    let msg = match copied {
        Ok(msg) => msg,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut encoded = BytesMut::new();
    msg.encode_framed(&mut encoded);
    let mut decoder = FrameDecoder::new(usize::MAX);
    decoder.push(&encoded);
    let frame = decoder
        .next_frame()
        .expect("re-encoded frame too large")
        .expect("re-encoded frame incomplete");
    assert_eq!(decoder.buffered(), 0, "re-encoded frame has extra bytes");
    let again = WorkerMessage::decode(&frame).expect("re-encoded message does not decode");
    assert_eq!(again, msg, "round trip changed the message");
    let mut twice = BytesMut::new();
    again.encode_framed(&mut twice);
    assert_eq!(twice, encoded, "encoding is not canonical");
}

/// Checks the native protocol on one frame: decoding never panics, the size limit holds, and
/// a decoded message re-encodes to bytes that decode to the same message.
///
/// # Panics
///
/// When a property fails.
pub fn check_native_message(data: &[u8]) {
    let result = NativeMessage::decode(data, FUZZ_MAX_MESSAGE);
    if data.len() <= FUZZ_MAX_MESSAGE {
        assert_eq!(NativeMessage::decode(data, data.len()), result);
    }
    if let Some(limit) = data.len().checked_sub(1) {
        assert!(matches!(
            NativeMessage::decode(data, limit),
            Err(DecodeError::TooLarge { .. })
        ));
    }
    let msg = match result {
        Ok(msg) => msg,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let encoded = msg.encode();
    let again =
        NativeMessage::decode(&encoded, usize::MAX).expect("re-encoded message does not decode");
    assert_eq!(again, msg, "round trip changed the message");
    assert_eq!(again.encode(), encoded, "encoding is not canonical");
}

/// The request limit the raw checks use: small, so that fuzzed inputs reach it.
pub const FUZZ_MAX_RAW: usize = 32;

/// Checks the raw server's framings (`line` and `length`) on a byte stream.
///
/// The first byte of `data` picks the framing (its high bit: `length` when set) and how many
/// of the next bytes (its low three bits, 0 to 7) are split sizes; the rest is the stream.
/// Fed whole and in pieces of those sizes (one byte at a time when there are none), the
/// decoder must yield the same requests and error; requests respect the limit (and a line
/// holds no `\n`); a request sent back as a `length` reply decodes to itself, and an error
/// line is one line.
///
/// # Panics
///
/// When a property fails.
pub fn check_raw_stream(data: &[u8]) {
    use super::raw::{self, LengthReply};
    use crate::manifest::Framing;

    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let framing = if head & 0x80 == 0 {
        Framing::Line
    } else {
        Framing::Length
    };
    let count = usize::from(head & 7).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let sizes: Vec<usize> = if sizes.is_empty() {
        vec![1]
    } else {
        sizes.iter().map(|&s| usize::from(s) + 1).collect()
    };
    let cut = |sizes: &[usize]| {
        let decoder =
            RequestDecoder::new(framing, FUZZ_MAX_RAW).expect("line and length have requests");
        split_decode(decoder, stream, sizes)
    };
    let whole = cut(&[stream.len()]);
    assert_eq!(
        whole,
        cut(&sizes),
        "requests depend on how the stream was split"
    );
    for request in whole.iter().filter_map(|r| r.as_ref().ok()) {
        assert!(request.len() <= FUZZ_MAX_RAW, "a request over the limit");
        if framing == Framing::Line {
            assert!(!request.contains(&b'\n'), "a line holds its terminator");
        }
        let reply = raw::length_reply(std::slice::from_ref(request));
        let payload = reply.get(4..).expect("a reply has its prefix");
        assert_eq!(
            raw::decode_length_reply(payload),
            Ok(LengthReply::Ok(request.clone()))
        );
        let text = String::from_utf8_lossy(request);
        let line = raw::line_error(400, &text);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
    }
}
