//! The raw socket server's framings (docs/protocol.md §5): how a TCP byte stream becomes requests
//! and how replies go back.
//!
//! - `line`: a request is a line without its `\n` (and a `\r` before it); a reply is its
//!   chunks joined and a `\n`; an error is `ERROR <code> <message>\n`.
//! - `length`: a request is a u32 big-endian length and that many bytes; a reply is a u32
//!   length and a payload whose first byte is 0 (ok, the chunks joined follow) or 1 (error,
//!   `<code> <message>` follows).
//! - `stream`: bytes pass through as they are; nothing to decode.
//!
//! Decoders take bytes in pieces of any size and give the same requests and errors whatever
//! the split (fuzzed: `fuzz/fuzz_targets/raw_frame.rs`). A request over the limit poisons the
//! decoder: the stream cannot be resynchronised, so the connection must close.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::frame::{FrameDecoder, PREFIX_LEN};
use super::DecodeError;
use crate::manifest::Framing;

/// First payload byte of a `length` reply that succeeded.
pub const LENGTH_OK: u8 = 0;
/// First payload byte of a `length` reply that failed.
pub const LENGTH_ERROR: u8 = 1;

/// Why a raw stream cannot be decoded any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    /// A line grew past `max-line` without ending. The size is not reported: how much of the
    /// line had arrived when this was noticed depends on how the stream was split.
    #[error("line longer than the limit of {limit} bytes")]
    LineTooLong { limit: usize },
    /// A length prefix above the frame limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
}

/// Cuts a byte stream into `line` requests.
#[derive(Debug)]
pub struct LineDecoder {
    buf: BytesMut,
    /// Bytes of `buf` already searched for `\n`, so a long line arriving in small pieces is
    /// scanned once, not once per piece.
    scanned: usize,
    max_line: usize,
    poisoned: Option<RawError>,
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_line` bytes (terminator not counted).
    pub fn new(max_line: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            max_line,
            poisoned: None,
        }
    }

    /// Appends bytes read from the stream. After an error they are dropped.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.poisoned.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole line, without its terminator; `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`RawError::LineTooLong`] once a line is known to exceed the limit; every later call
    /// returns the same error.
    pub fn next_line(&mut self) -> Result<Option<Bytes>, RawError> {
        if let Some(err) = &self.poisoned {
            return Err(err.clone());
        }
        let found = self
            .buf
            .get(self.scanned..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        match found {
            Some(at) => {
                let end = self.scanned + at;
                self.scanned = 0;
                let mut line = self.buf.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                if line.len() > self.max_line {
                    return Err(self.poison());
                }
                Ok(Some(line.freeze()))
            }
            None => {
                self.scanned = self.buf.len();
                // Unfinished, the line is at least this long; a final `\r` may still be part
                // of its terminator.
                let mut least = self.buf.len();
                if self.buf.last() == Some(&b'\r') {
                    least -= 1;
                }
                if least > self.max_line {
                    return Err(self.poison());
                }
                Ok(None)
            }
        }
    }

    fn poison(&mut self) -> RawError {
        let err = RawError::LineTooLong {
            limit: self.max_line,
        };
        self.poisoned = Some(err.clone());
        self.buf = BytesMut::new();
        self.scanned = 0;
        err
    }

    /// Bytes buffered that do not yet form a whole line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Cuts a byte stream into requests of either framing that has requests (`line`, `length`).
#[derive(Debug)]
pub enum RequestDecoder {
    Line(LineDecoder),
    Length(FrameDecoder),
}

impl RequestDecoder {
    /// A decoder for `framing` with `limit` bytes per request; `None` for `stream`, which
    /// has no requests to cut.
    pub fn new(framing: Framing, limit: usize) -> Option<Self> {
        match framing {
            Framing::Line => Some(Self::Line(LineDecoder::new(limit))),
            Framing::Length => Some(Self::Length(FrameDecoder::new(limit))),
            Framing::Stream => None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        match self {
            Self::Line(d) => d.push(bytes),
            Self::Length(d) => d.push(bytes),
        }
    }

    /// The next whole request, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// When a request is over the limit; the decoder then stays poisoned.
    pub fn next_request(&mut self) -> Result<Option<Bytes>, RawError> {
        match self {
            Self::Line(d) => d.next_line(),
            Self::Length(d) => d.next_frame().map_err(|e| match e {
                DecodeError::TooLarge { size, limit } => RawError::FrameTooLarge { size, limit },
                // The frame decoder fails only on size; keep the limit in the message anyway.
                _ => RawError::FrameTooLarge {
                    size: 0,
                    limit: usize::MAX,
                },
            }),
        }
    }
}

/// A `line` reply: the chunks joined, then `\n`.
pub fn line_reply(chunks: &[Bytes]) -> Bytes {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(len + 1);
    for chunk in chunks {
        out.put_slice(chunk);
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// A `line` error: `ERROR <code> <message>\n`, with line breaks in the message made spaces so
/// the error stays one line.
pub fn line_error(code: u32, message: &str) -> Bytes {
    let message = one_line(message);
    Bytes::from(format!("ERROR {code} {message}\n"))
}

/// A `length` reply: u32 length, 0, the chunks joined.
pub fn length_reply(chunks: &[Bytes]) -> Bytes {
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(PREFIX_LEN + 1 + len);
    out.put_u32(prefix(1 + len));
    out.put_u8(LENGTH_OK);
    for chunk in chunks {
        out.put_slice(chunk);
    }
    out.freeze()
}

/// A `length` error: u32 length, 1, `<code> <message>`.
pub fn length_error(code: u32, message: &str) -> Bytes {
    let text = format!("{code} {message}");
    let mut out = BytesMut::with_capacity(PREFIX_LEN + 1 + text.len());
    out.put_u32(prefix(1 + text.len()));
    out.put_u8(LENGTH_ERROR);
    out.put_slice(text.as_bytes());
    out.freeze()
}

/// A reply in `framing` (`stream` writes chunks as they come and has no reply format: it gets
/// the chunks joined).
pub fn reply(framing: Framing, chunks: &[Bytes]) -> Bytes {
    match framing {
        Framing::Line => line_reply(chunks),
        Framing::Length => length_reply(chunks),
        Framing::Stream => chunks.concat().into(),
    }
}

/// An error in `framing` (`stream` has none: empty).
pub fn error(framing: Framing, code: u32, message: &str) -> Bytes {
    match framing {
        Framing::Line => line_error(code, message),
        Framing::Length => length_error(code, message),
        Framing::Stream => Bytes::new(),
    }
}

/// A `length` reply payload (after its prefix) as the client reads it: the body, or the
/// error's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LengthReply {
    Ok(Bytes),
    Error { code: u32, message: String },
}

/// Why a `length` reply payload is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LengthReplyError {
    #[error("empty reply payload")]
    Empty,
    #[error("unknown reply status byte {0}")]
    Status(u8),
    #[error("error reply is not `<code> <message>` in UTF-8")]
    ErrorText,
}

/// Decodes a `length` reply payload (what a client does; the node only encodes).
///
/// # Errors
///
/// When the payload is empty, its status byte unknown, or an error's text malformed.
pub fn decode_length_reply(payload: &[u8]) -> Result<LengthReply, LengthReplyError> {
    let mut payload = payload;
    if payload.is_empty() {
        return Err(LengthReplyError::Empty);
    }
    match payload.get_u8() {
        LENGTH_OK => Ok(LengthReply::Ok(Bytes::copy_from_slice(payload))),
        LENGTH_ERROR => {
            let text = std::str::from_utf8(payload).map_err(|_| LengthReplyError::ErrorText)?;
            let (code, message) = text.split_once(' ').ok_or(LengthReplyError::ErrorText)?;
            let code = code.parse().map_err(|_| LengthReplyError::ErrorText)?;
            Ok(LengthReply::Error {
                code,
                message: message.to_owned(),
            })
        }
        other => Err(LengthReplyError::Status(other)),
    }
}

fn one_line(message: &str) -> String {
    message.replace(['\n', '\r'], " ")
}

fn prefix(len: usize) -> u32 {
    // Replies are bounded by the reply limit (64 MiB by default) long before u32::MAX.
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(decoder: &mut LineDecoder) -> Vec<Result<Bytes, RawError>> {
        let mut out = Vec::new();
        loop {
            match decoder.next_line() {
                Ok(Some(l)) => out.push(Ok(l)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    #[test]
    fn lines_lose_their_terminators_and_empty_lines_count() {
        let mut d = LineDecoder::new(16);
        d.push(b"one\r\ntwo\n\nthr");
        assert_eq!(
            lines(&mut d),
            vec![
                Ok(Bytes::from_static(b"one")),
                Ok(Bytes::from_static(b"two")),
                Ok(Bytes::new())
            ]
        );
        d.push(b"ee\r");
        assert!(lines(&mut d).is_empty());
        d.push(b"\n");
        assert_eq!(lines(&mut d), vec![Ok(Bytes::from_static(b"three"))]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_over_fails_before_its_end() {
        let mut d = LineDecoder::new(4);
        d.push(b"abcd\r");
        assert!(lines(&mut d).is_empty(), "a \\r may still end the line");
        d.push(b"\nabcde");
        let got = lines(&mut d);
        assert_eq!(got[0], Ok(Bytes::from_static(b"abcd")));
        assert_eq!(got[1], Err(RawError::LineTooLong { limit: 4 }));
        d.push(b"\nok\n");
        assert_eq!(d.next_line(), Err(RawError::LineTooLong { limit: 4 }));
    }

    #[test]
    fn length_frames_and_oversized_prefixes() {
        let mut d = RequestDecoder::new(Framing::Length, 8).unwrap();
        d.push(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0]);
        assert_eq!(d.next_request(), Ok(Some(Bytes::from_static(b"hi"))));
        assert_eq!(d.next_request(), Ok(None));
        d.push(&[9]);
        assert_eq!(
            d.next_request(),
            Err(RawError::FrameTooLarge { size: 9, limit: 8 })
        );
    }

    #[test]
    fn replies_in_each_framing() {
        let chunks = [Bytes::from_static(b"ab"), Bytes::from_static(b"c")];
        assert_eq!(&line_reply(&chunks)[..], b"abc\n");
        assert_eq!(
            &line_error(503, "queue\nfull")[..],
            b"ERROR 503 queue full\n"
        );
        let ok = length_reply(&chunks);
        assert_eq!(&ok[..], &[0, 0, 0, 4, 0, b'a', b'b', b'c']);
        assert_eq!(
            decode_length_reply(&ok[4..]),
            Ok(LengthReply::Ok(Bytes::from_static(b"abc")))
        );
        let err = length_error(413, "too large");
        assert_eq!(
            decode_length_reply(&err[4..]),
            Ok(LengthReply::Error {
                code: 413,
                message: "too large".into()
            })
        );
        assert_eq!(decode_length_reply(&[7]), Err(LengthReplyError::Status(7)));
    }
}
