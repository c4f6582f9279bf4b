//! The Cocaine node's event loop on mio (see its issue).
