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
    /// Each watched source's token, descriptor and whether writability is wanted now.
    tokens: HashMap<Source, (Token, RawFd, bool)>,
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
        self.tokens.insert(source, (token, fd, false));
        self.sources.insert(token, source);
        Ok(())
    }

    fn want_write(&mut self, source: Source, write: bool) {
        let Some((token, fd, wanted)) = self.tokens.get_mut(&source) else {
            return;
        };
        // Every flush asks; only a change is worth a system call.
        if *wanted == write {
            return;
        }
        *wanted = write;
        let (token, fd) = (*token, *fd);
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
        if let Some((token, fd, _)) = self.tokens.remove(&source) {
            self.sources.remove(&token);
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }
}
