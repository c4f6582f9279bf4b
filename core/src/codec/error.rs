//! Decode errors: each names what was wrong, so the peer and the log can be told.

/// Longest map key an [`DecodeError::UnknownKey`] keeps: the key comes from the peer and the
/// error goes into logs and replies, so it must not carry megabytes.
const MAX_KEY_IN_ERROR: usize = 64;

/// Why bytes could not be decoded into a protocol message.
///
/// Field names are static strings such as `"sid"` or `"meta.timeout"`; anything taken from the
/// input (an unknown key) is shortened and printed escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is not a msgpack array.
    #[error("message is not a msgpack array")]
    NotAnArray,
    /// The message is an empty array, so it has no kind.
    #[error("message is an empty array: the kind is missing")]
    MissingKind,
    /// The kind is not one this protocol knows.
    #[error("unknown message kind {0}")]
    UnknownKind(u64),
    /// The array has the wrong number of elements for its kind.
    #[error("message kind {kind} takes {expected} elements, got {got}")]
    WrongArity {
        /// The message kind.
        kind: u64,
        /// Elements that kind takes, the kind included.
        expected: usize,
        /// Elements the array declared.
        got: usize,
    },
    /// A field holds a value of the wrong msgpack type.
    #[error("field `{field}`: expected {expected}")]
    WrongType {
        /// The field, e.g. `"sid"` or `"policy.timeout"`.
        field: &'static str,
        /// What it should have been, e.g. `"unsigned integer"`.
        expected: &'static str,
    },
    /// An integer field is negative or too large for its type.
    #[error("field `{field}`: integer out of range for {expected}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The type it must fit, e.g. `"u32"`.
        expected: &'static str,
    },
    /// A string field (or map key) is not valid UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// The input ends in the middle of the message.
    #[error("truncated input")]
    Truncated,
    /// Bytes follow the end of the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The message (or a frame's length prefix) exceeds the size limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the message in bytes.
        size: usize,
        /// The configured `max-message`.
        limit: usize,
    },
    /// A map key is not a string.
    #[error("`{map}` has a key that is not a string")]
    InvalidMapKey {
        /// The map, e.g. `"meta"`.
        map: &'static str,
    },
    /// A map has a key this protocol does not know.
    #[error("`{map}` has unknown key {key:?}")]
    UnknownKey {
        /// The map, e.g. `"policy"`.
        map: &'static str,
        /// The key, shortened to 64 bytes.
        key: String,
    },
    /// A map has the same key twice.
    #[error("`{map}` has key {key:?} twice")]
    DuplicateKey {
        /// The map.
        map: &'static str,
        /// The key.
        key: &'static str,
    },
    /// A field is well-typed but its value is not allowed (e.g. a reply status of 99).
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A map lacks a key it must have.
    #[error("`{map}` lacks key {key:?}")]
    MissingKey {
        /// The map.
        map: &'static str,
        /// The key.
        key: &'static str,
    },
}

impl DecodeError {
    /// An [`DecodeError::UnknownKey`] holding at most 64 bytes of `key`.
    pub(crate) fn unknown_key(map: &'static str, key: &str) -> Self {
        let mut end = key.len().min(MAX_KEY_IN_ERROR);
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        let mut short = key.get(..end).unwrap_or_default().to_owned();
        if end < key.len() {
            short.push('…');
        }
        DecodeError::UnknownKey { map, key: short }
    }
}
