//! The host's readiness on `mio`: each watched descriptor gets a token, edge-triggered.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use cocaine_os::host::{Readiness, Source};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Token 0 is the signals'.
pub(crate) const SIGNALS: Token = Token(0);

pub(crate) struct MioReadiness {
    registry: Registry,
    tokens: HashMap<Source, (Token, RawFd)>,
    /// What a token stands for; a token missing here is stale and its events are ignored.
    pub sources: HashMap<Token, Source>,
    next: usize,
}

impl MioReadiness {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            tokens: HashMap::new(),
            sources: HashMap::new(),
            next: SIGNALS.0,
        }
    }
}

impl Readiness for MioReadiness {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        self.next += 1;
        let token = Token(self.next);
        self.registry
            .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        self.tokens.insert(source, (token, fd));
        self.sources.insert(token, source);
        Ok(())
    }

    fn want_write(&mut self, source: Source, write: bool) {
        let Some(&(token, fd)) = self.tokens.get(&source) else {
            return;
        };
        let interest = if write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = self
            .registry
            .reregister(&mut SourceFd(&fd), token, interest);
    }

    fn unwatch(&mut self, source: Source) {
        if let Some((token, fd)) = self.tokens.remove(&source) {
            self.sources.remove(&token);
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }
}
