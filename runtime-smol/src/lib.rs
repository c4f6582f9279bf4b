//! The Cocaine node's event loop on smol (see its issue).
