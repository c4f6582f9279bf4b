//! A request body, by `Content-Length` or chunked transfer coding, cut into the pieces that
//! have arrived so far.
//!
//! The chunked decoder is strict where leniency lets two parsers disagree about where a
//! request ends: CRLF only (a lone LF is an error), no spaces around the size, at most 16 hex
//! digits, bounded extensions and trailers. Extensions and trailers are read and dropped.

use bytes::{Bytes, BytesMut};

use super::request::BodyLength;
use super::Reject;

/// Most bytes of chunk extensions one chunk line may carry.
const MAX_EXTENSION: usize = 4096;
/// Most hex digits of a chunk size: 16 fill a u64.
const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `remaining` bytes of a Content-Length body.
    Length {
        remaining: u64,
    },
    /// The hex size of the next chunk.
    Size {
        digits: u8,
        value: u64,
    },
    /// After `;`: extensions up to the line's CR.
    Extension {
        len: usize,
        value: u64,
    },
    /// The LF that ends a chunk-size line.
    SizeLf {
        value: u64,
    },
    /// `remaining` bytes of chunk data.
    Data {
        remaining: u64,
    },
    /// The CR, then the LF, after chunk data.
    DataCr,
    DataLf,
    /// Trailer fields after the last chunk: `line` bytes into the current line.
    Trailer {
        line: usize,
    },
    TrailerLf {
        line: usize,
    },
    Done,
}

/// Decodes one request's body.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    /// Body bytes so far (chunk data only), against `max_body`.
    received: u64,
    max_body: u64,
    /// Bytes of trailers so far, against `max_trailer`.
    trailer: usize,
    max_trailer: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `length` says. `max_trailer` bounds chunked trailers
    /// (431 past it); a body over `max_body` bytes is 413.
    pub fn new(length: BodyLength, max_body: usize, max_trailer: usize) -> Self {
        let state = match length {
            BodyLength::Length(0) => State::Done,
            BodyLength::Length(n) => State::Length { remaining: n },
            BodyLength::Chunked => State::Size {
                digits: 0,
                value: 0,
            },
        };
        BodyDecoder {
            state,
            received: 0,
            max_body: max_body as u64,
            trailer: 0,
            max_trailer,
        }
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes what it can from the front of `buf`, appending body bytes to `chunks` (pieces
    /// of the input, not copied); stops at the end of the body. `Ok(true)`: the body is
    /// complete, and what follows in `buf` is the next request.
    ///
    /// # Errors
    ///
    /// 400 for a malformed chunked body, 413 when the body grows past `max_body`, 431 for
    /// oversized trailers; `chunks` still gets the body bytes before the fault, so what is
    /// delivered does not depend on how the input was split. The decoder must not be used
    /// after an error.
    pub fn decode(&mut self, buf: &mut BytesMut, chunks: &mut Vec<Bytes>) -> Result<bool, Reject> {
        while !buf.is_empty() && self.state != State::Done {
            match self.state {
                State::Length { remaining } | State::Data { remaining } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    self.received += n as u64;
                    if self.received > self.max_body {
                        return Err(Reject::new(413, "request body too large"));
                    }
                    chunks.push(buf.split_to(n).freeze());
                    let left = remaining - n as u64;
                    self.state = match self.state {
                        State::Length { .. } if left == 0 => State::Done,
                        State::Length { .. } => State::Length { remaining: left },
                        _ if left == 0 => State::DataCr,
                        _ => State::Data { remaining: left },
                    };
                }
                _ => {
                    let byte = buf.split_to(1)[0];
                    self.state = self.step(byte)?;
                }
            }
        }
        Ok(self.state == State::Done)
    }

    /// One byte of chunked framing.
    fn step(&mut self, byte: u8) -> Result<State, Reject> {
        let bad = |reason| Err(Reject::new(400, reason));
        match (self.state, byte) {
            (State::Size { digits, value }, _) if byte.is_ascii_hexdigit() => {
                if digits == MAX_SIZE_DIGITS {
                    return bad("chunk size too long");
                }
                let digit = u64::from(char::from(byte).to_digit(16).unwrap_or(0));
                Ok(State::Size {
                    digits: digits + 1,
                    value: value << 4 | digit,
                })
            }
            (State::Size { digits: 0, .. }, _) => bad("chunk size missing"),
            (State::Size { value, .. }, b';') => Ok(State::Extension { len: 0, value }),
            (State::Size { value, .. }, b'\r') => Ok(State::SizeLf { value }),
            (State::Size { .. }, _) => bad("invalid chunk size"),
            (State::Extension { value, .. }, b'\r') => Ok(State::SizeLf { value }),
            (State::Extension { len, value }, _) => {
                if len == MAX_EXTENSION {
                    return bad("chunk extension too long");
                }
                if byte != b'\t' && (byte < 0x20 || byte == 0x7f) {
                    return bad("control character in chunk extension");
                }
                Ok(State::Extension {
                    len: len + 1,
                    value,
                })
            }
            (State::SizeLf { value: 0 }, b'\n') => Ok(State::Trailer { line: 0 }),
            (State::SizeLf { value }, b'\n') => self.chunk_start(value),
            (State::DataCr, b'\r') => Ok(State::DataLf),
            (State::DataLf, b'\n') => Ok(State::Size {
                digits: 0,
                value: 0,
            }),
            (State::Trailer { line }, b'\r') => Ok(State::TrailerLf { line }),
            (State::Trailer { line }, _) => {
                self.trailer += 1;
                if self.trailer > self.max_trailer {
                    return Err(Reject::new(431, "trailer fields too large"));
                }
                if byte != b'\t' && (byte < 0x20 || byte == 0x7f) {
                    return bad("control character in a trailer field");
                }
                Ok(State::Trailer { line: line + 1 })
            }
            (State::TrailerLf { line: 0 }, b'\n') => Ok(State::Done),
            (State::TrailerLf { .. }, b'\n') => Ok(State::Trailer { line: 0 }),
            _ => bad("chunked framing expects CRLF"),
        }
    }

    fn chunk_start(&self, size: u64) -> Result<State, Reject> {
        if self.received.saturating_add(size) > self.max_body {
            return Err(Reject::new(413, "request body too large"));
        }
        Ok(State::Data { remaining: size })
    }
}
