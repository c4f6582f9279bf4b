//! u32 big-endian length-prefixed framing over a byte stream.
