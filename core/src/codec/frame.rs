//! u32 big-endian length-prefixed framing over a byte stream.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::DecodeError;

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// Smallest buffer the decoder allocates, so that a stream of small reads does not allocate
/// on every push.
const MIN_CAPACITY: usize = 8 * 1024;

/// Splits a byte stream into frames: a u32 big-endian length, then that many bytes.
///
/// Bytes go in with [`push`](Self::push) in pieces of any size; whole frames come out of
/// [`next_frame`](Self::next_frame) as `Bytes` that share the decoder's buffer (no copy per
/// frame). A length above `max_message` poisons the decoder: framing is lost for good, so the
/// connection must be dropped.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_message: usize,
    poisoned: Option<DecodeError>,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_message` bytes (prefix not counted).
    pub fn new(max_message: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_message,
            poisoned: None,
        }
    }

    /// Appends bytes read from the stream. After an error they are dropped.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.poisoned.is_some() || bytes.is_empty() {
            return;
        }
        let spare = self.buf.capacity() - self.buf.len();
        if spare < bytes.len() {
            // Grow at least by what is buffered: frames handed out share the allocation, so
            // `BytesMut` cannot grow in place and reserving just enough would copy the partial
            // frame again on every push (quadratic when a big frame comes in small reads).
            self.buf
                .reserve(bytes.len().max(self.buf.len()).max(MIN_CAPACITY));
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame body, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] if a length prefix exceeds `max_message`; every later call
    /// returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if let Some(err) = &self.poisoned {
            return Err(err.clone());
        }
        let Some(prefix) = self.buf.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let mut len = [0u8; PREFIX_LEN];
        len.copy_from_slice(prefix);
        // u32 always fits usize on the 32- and 64-bit targets we build for; saturating keeps
        // the comparison below correct anywhere else.
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > self.max_message {
            let err = DecodeError::TooLarge {
                size: len,
                limit: self.max_message,
            };
            self.poisoned = Some(err.clone());
            self.buf = BytesMut::new();
            return Err(err);
        }
        if self.buf.len() - PREFIX_LEN < len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Bytes buffered that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a length prefix exceeded the limit, leaving the stream unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
}

/// Appends `body` as one frame: its u32 big-endian length, then the bytes.
///
/// # Panics
///
/// If `body` is longer than `u32::MAX`; messages are bounded by `max-message` long before.
pub fn write_frame(out: &mut BytesMut, body: &[u8]) {
    out.reserve(PREFIX_LEN + body.len());
    out.put_u32(frame_len(body.len()));
    out.put_slice(body);
}

/// Starts a frame whose body the caller appends next: writes a placeholder prefix and
/// returns where it is, for [`end_frame`].
pub(crate) fn begin_frame(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_u32(0);
    start
}

/// Fills in the prefix written by [`begin_frame`] with the length of what followed it.
///
/// # Panics
///
/// If the body is longer than `u32::MAX` bytes.
pub(crate) fn end_frame(out: &mut BytesMut, start: usize) {
    let body = out.len() - start - PREFIX_LEN;
    let prefix = frame_len(body).to_be_bytes();
    if let Some(slot) = out.get_mut(start..start + PREFIX_LEN) {
        slot.copy_from_slice(&prefix);
    }
}

fn frame_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| panic!("a frame cannot hold {len} bytes"))
}
