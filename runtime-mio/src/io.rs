//! The host's readiness on `mio`: each watched descriptor gets a token, edge-triggered.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use cocaine_os::host::{Readiness, Source};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Token 0 is the signals'.
pub(crate) const SIGNALS: Token = Token(0);

/// What a source is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    read: bool,
    write: bool,
}

impl Wanted {
    fn interest(self) -> Interest {
        match (self.read, self.write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            // mio cannot register for nothing; an edge-triggered readable event for a stream
            // that has ended comes once and is ignored by the host.
            (_, false) => Interest::READABLE,
        }
    }
}

pub(crate) struct MioReadiness {
    registry: Registry,
    /// Each watched source's token, descriptor and what it is watched for now.
    tokens: HashMap<Source, (Token, RawFd, Wanted)>,
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

impl MioReadiness {
    fn change(&mut self, source: Source, f: impl FnOnce(&mut Wanted)) {
        let Some((token, fd, wanted)) = self.tokens.get_mut(&source) else {
            return;
        };
        let before = *wanted;
        f(wanted);
        // Every flush asks; only a change is worth a system call.
        if before.interest() == wanted.interest() {
            return;
        }
        let (token, fd, interest) = (*token, *fd, wanted.interest());
        let _ = self
            .registry
            .reregister(&mut SourceFd(&fd), token, interest);
    }
}

impl Readiness for MioReadiness {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        self.next += 1;
        let token = Token(self.next);
        self.registry
            .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        let wanted = Wanted {
            read: true,
            write: false,
        };
        self.tokens.insert(source, (token, fd, wanted));
        self.sources.insert(token, source);
        Ok(())
    }

    fn want_write(&mut self, source: Source, write: bool) {
        self.change(source, |w| w.write = write);
    }

    fn want_read(&mut self, source: Source, read: bool) {
        self.change(source, |w| w.read = read);
    }

    fn unwatch(&mut self, source: Source) {
        if let Some((token, fd, _)) = self.tokens.remove(&source) {
            self.sources.remove(&token);
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }
}
