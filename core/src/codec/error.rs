//! Decode errors: each names what was wrong, so the peer and the log can be told.

/// Why bytes could not be decoded into a protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    // Implementation: see the codec task.
}
