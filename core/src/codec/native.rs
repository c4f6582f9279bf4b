//! The native protocol (PROTOCOL.md §2).
