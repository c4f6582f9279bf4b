//! The msgpack subset both protocols use: a strict reader over a borrowed slice and thin
//! writers over `rmp::encode`.
//!
//! The reader is hand-rolled on top of `rmp::Marker` rather than `rmp::decode` so that every
//! failure maps to a precise [`DecodeError`] (which field, truncated or wrong type) and so that
//! strings and binaries are borrowed from the input instead of copied.

use bytes::{BufMut, BytesMut};
use rmp::Marker;

use super::DecodeError;

/// A cursor over one msgpack message (a copy peeks ahead).
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

/// The head of a protocol message: its kind and how many elements its array declared.
pub(crate) struct Head<'a> {
    pub kind: u64,
    pub arity: usize,
    pub body: Reader<'a>,
}

impl<'a> Reader<'a> {
    /// Reads the array header and the kind of a protocol message.
    pub fn message(input: &'a [u8]) -> Result<Head<'a>, DecodeError> {
        let mut r = Reader { rest: input };
        let arity = match r.marker()? {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => usize::from(r.be_u16()?),
            Marker::Array32 => r.len32()?,
            _ => return Err(DecodeError::NotAnArray),
        };
        if arity == 0 {
            return Err(DecodeError::MissingKind);
        }
        let kind = r.uint("kind")?;
        Ok(Head {
            kind,
            arity,
            body: r,
        })
    }

    /// How far into `input` (the slice this reader started on) the cursor is.
    pub fn offset_in(&self, input: &[u8]) -> usize {
        input.len() - self.rest.len()
    }

    /// Fails unless the whole input was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes, so the conversion cannot fail.
        bytes.try_into().map_err(|_| DecodeError::Truncated)
    }

    fn marker(&mut self) -> Result<Marker, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(Marker::from_u8(b))
    }

    fn be_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.take_array()?))
    }

    fn be_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }

    fn be_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    fn be_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take_array()?))
    }

    /// A u32 length; usize is at least 32 bits on every target we build for.
    fn len32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.be_u32()?).map_err(|_| DecodeError::Truncated)
    }

    /// Any msgpack integer that is non-negative and fits a u64, whatever its encoding:
    /// other msgpack writers pick signed encodings for small positive numbers.
    pub fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let negative = DecodeError::OutOfRange {
            field,
            expected: "an unsigned integer",
        };
        let signed = |v: i64| u64::try_from(v).map_err(|_| negative.clone());
        match self.marker()? {
            Marker::FixPos(v) => Ok(u64::from(v)),
            Marker::U8 => Ok(u64::from(self.be_u8()?)),
            Marker::U16 => Ok(u64::from(self.be_u16()?)),
            Marker::U32 => Ok(u64::from(self.be_u32()?)),
            Marker::U64 => self.be_u64(),
            Marker::I8 => signed(i64::from(i8::from_be_bytes(self.take_array()?))),
            Marker::I16 => signed(i64::from(i16::from_be_bytes(self.take_array()?))),
            Marker::I32 => signed(i64::from(i32::from_be_bytes(self.take_array()?))),
            Marker::I64 => signed(i64::from_be_bytes(self.take_array()?)),
            Marker::FixNeg(_) => Err(negative),
            _ => Err(DecodeError::WrongType {
                field,
                expected: "an unsigned integer",
            }),
        }
    }

    /// An unsigned integer that must fit a u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        u32::try_from(self.uint(field)?).map_err(|_| DecodeError::OutOfRange {
            field,
            expected: "u32",
        })
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.marker()? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(DecodeError::WrongType {
                field,
                expected: "a boolean",
            }),
        }
    }

    /// The payload length if `marker` starts a str.
    fn str_len(&mut self, marker: Marker) -> Result<Option<usize>, DecodeError> {
        Ok(Some(match marker {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => usize::from(self.be_u8()?),
            Marker::Str16 => usize::from(self.be_u16()?),
            Marker::Str32 => self.len32()?,
            _ => return Ok(None),
        }))
    }

    /// The payload length if `marker` starts a bin.
    fn bin_len(&mut self, marker: Marker) -> Result<Option<usize>, DecodeError> {
        Ok(Some(match marker {
            Marker::Bin8 => usize::from(self.be_u8()?),
            Marker::Bin16 => usize::from(self.be_u16()?),
            Marker::Bin32 => self.len32()?,
            _ => return Ok(None),
        }))
    }

    /// A UTF-8 `str`, borrowed from the input.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let marker = self.marker()?;
        let len = self.str_len(marker)?.ok_or(DecodeError::WrongType {
            field,
            expected: "a string",
        })?;
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// A `bin`, borrowed from the input.
    pub fn bin(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let marker = self.marker()?;
        let len = self.bin_len(marker)?.ok_or(DecodeError::WrongType {
            field,
            expected: "binary",
        })?;
        self.take(len)
    }

    /// Bytes sent as either `bin` or `str` (SDKs in languages without a bytes type send
    /// strings); a `str` here is not checked for UTF-8 since it is only bytes to us.
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let marker = self.marker()?;
        let len = match self.bin_len(marker)? {
            Some(len) => len,
            None => self.str_len(marker)?.ok_or(DecodeError::WrongType {
                field,
                expected: "binary or a string",
            })?,
        };
        self.take(len)
    }

    /// An array header, giving the number of elements.
    pub fn array_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        match self.marker()? {
            Marker::FixArray(n) => Ok(usize::from(n)),
            Marker::Array16 => Ok(usize::from(self.be_u16()?)),
            Marker::Array32 => self.len32(),
            _ => Err(DecodeError::WrongType {
                field,
                expected: "an array",
            }),
        }
    }

    /// A map header, giving the number of key/value pairs.
    pub fn map_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        match self.marker()? {
            Marker::FixMap(n) => Ok(usize::from(n)),
            Marker::Map16 => Ok(usize::from(self.be_u16()?)),
            Marker::Map32 => self.len32(),
            _ => Err(DecodeError::WrongType {
                field,
                expected: "a map",
            }),
        }
    }

    /// Consumes a `nil` if one comes next.
    pub fn nil(&mut self) -> bool {
        match self.rest.split_first() {
            Some((&b, rest)) if Marker::from_u8(b) == Marker::Null => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// A map key, which must be a UTF-8 string.
    pub fn key(&mut self, map: &'static str) -> Result<&'a str, DecodeError> {
        let marker = self.marker()?;
        let len = self
            .str_len(marker)?
            .ok_or(DecodeError::InvalidMapKey { map })?;
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidMapKey { map })
    }
}

/// Fails with [`DecodeError::DuplicateKey`] if `slot` already holds a value.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    map: &'static str,
    key: &'static str,
) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateKey { map, key });
    }
    *slot = Some(value);
    Ok(())
}

/// Converts a length to the u32 msgpack uses for container and payload sizes.
///
/// # Panics
///
/// If `len` exceeds `u32::MAX`: msgpack cannot express it, and callers bound every message
/// by `max-message` (itself at most `u32::MAX`) long before that.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| panic!("msgpack cannot encode a length of {len}"))
}

// The writers put bytes straight into the buffer: they are on the hot path of every job,
// where `rmp::encode`'s `io::Write` plumbing showed up in profiles. Each picks the shortest
// encoding, as every msgpack writer does (the tests compare with Python's msgpack bytes).

/// A container or payload header: the fix form when `len` fits under `fix_limit`, else the
/// 8-, 16- or 32-bit length form (`m8` may be absent, as for arrays and maps).
fn put_len(
    out: &mut BytesMut,
    len: u32,
    fix: u8,
    fix_limit: u32,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
) {
    if len < fix_limit {
        out.put_u8(fix | len as u8);
    } else if let (Some(m8), true) = (m8, len <= u32::from(u8::MAX)) {
        out.put_u8(m8);
        out.put_u8(len as u8);
    } else if len <= u32::from(u16::MAX) {
        out.put_u8(m16);
        out.put_u16(len as u16);
    } else {
        out.put_u8(m32);
        out.put_u32(len);
    }
}

pub(crate) fn put_array_len(out: &mut BytesMut, len: u32) {
    put_len(out, len, 0x90, 16, None, 0xdc, 0xdd);
}

pub(crate) fn put_map_len(out: &mut BytesMut, len: u32) {
    put_len(out, len, 0x80, 16, None, 0xde, 0xdf);
}

/// The shortest encoding of `v`.
pub(crate) fn put_uint(out: &mut BytesMut, v: u64) {
    if v < 128 {
        out.put_u8(v as u8);
    } else if v <= u64::from(u8::MAX) {
        out.put_u8(0xcc);
        out.put_u8(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.put_u8(0xcd);
        out.put_u16(v as u16);
    } else if v <= u64::from(u32::MAX) {
        out.put_u8(0xce);
        out.put_u32(v as u32);
    } else {
        out.put_u8(0xcf);
        out.put_u64(v);
    }
}

pub(crate) fn put_bool(out: &mut BytesMut, v: bool) {
    out.put_u8(if v { 0xc3 } else { 0xc2 });
}

pub(crate) fn put_nil(out: &mut BytesMut) {
    out.put_u8(0xc0);
}

pub(crate) fn put_str(out: &mut BytesMut, s: &str) {
    put_len(out, len_u32(s.len()), 0xa0, 32, Some(0xd9), 0xda, 0xdb);
    out.put_slice(s.as_bytes());
}

pub(crate) fn put_bin(out: &mut BytesMut, data: &[u8]) {
    // bin has no fix form: a fix limit of 0 never applies.
    put_len(out, len_u32(data.len()), 0, 0, Some(0xc4), 0xc5, 0xc6);
    out.put_slice(data);
}

/// Upper bound of the bytes a str or bin header, or an integer, takes.
pub(crate) const MAX_HEAD: usize = 9;

#[cfg(test)]
mod writer_tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn writers_match_rmp_at_every_boundary() {
        for len in [0usize, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536] {
            let text = "y".repeat(len);
            let mut out = BytesMut::new();
            put_array_len(&mut out, len as u32);
            put_map_len(&mut out, len as u32);
            put_str(&mut out, &text);
            put_bin(&mut out, text.as_bytes());
            put_uint(&mut out, len as u64);
            let expected = reference(|w| {
                rmp::encode::write_array_len(w, len as u32).unwrap();
                rmp::encode::write_map_len(w, len as u32).unwrap();
                rmp::encode::write_str(w, &text).unwrap();
                rmp::encode::write_bin(w, text.as_bytes()).unwrap();
                rmp::encode::write_uint(w, len as u64).unwrap();
            });
            assert_eq!(&out[..], &expected[..], "length {len}");
        }
    }

    proptest! {
        /// The hand-written writers produce exactly the bytes of `rmp::encode`, the reference
        /// msgpack writer, at every length and value class.
        #[test]
        fn writers_match_rmp(v in any::<u64>(), small in 0u64..70_000, len in 0usize..70_000) {
            for value in [v, small, v >> 32, v >> 48, v >> 56] {
                let mut out = BytesMut::new();
                put_uint(&mut out, value);
                prop_assert_eq!(&out[..], &reference(|w| { rmp::encode::write_uint(w, value).unwrap(); })[..]);
            }
            let n = len as u32;
            let mut out = BytesMut::new();
            put_array_len(&mut out, n);
            put_map_len(&mut out, n);
            let expected = reference(|w| {
                rmp::encode::write_array_len(w, n).unwrap();
                rmp::encode::write_map_len(w, n).unwrap();
            });
            prop_assert_eq!(&out[..], &expected[..]);
            let text = "x".repeat(len);
            let mut out = BytesMut::new();
            put_str(&mut out, &text);
            put_bin(&mut out, text.as_bytes());
            let expected = reference(|w| {
                rmp::encode::write_str(w, &text).unwrap();
                rmp::encode::write_bin(w, text.as_bytes()).unwrap();
            });
            prop_assert_eq!(&out[..], &expected[..]);
        }
    }
}
