//! The Cocaine node on `mio`: the host's [`Runtime`] over one `mio::Poll`, with every watched
//! descriptor registered edge-triggered under a token of its own, and the signals the node
//! reacts to (SIGCHLD, SIGINT, SIGTERM) through signal-hook's `mio` source. The loop and
//! everything it does are [`cocaine_os::host`]'s.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use cocaine_core::ids::IdMap;
use cocaine_core::node::Node;
use cocaine_core::Now;
use cocaine_os::host::{
    run_blocking, system_now, Host, Observe, Ready, Runtime, Setup, Source, Wake,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// The loop could not be set up, or waiting failed.
#[derive(Debug, thiserror::Error)]
#[error("the event loop failed: {0}")]
pub struct RunError(#[from] io::Error);

/// Runs `node` on `mio` until it stops (see [`Host::run`]).
pub fn run(node: Node, setup: Setup, observe: Observe<'_>) -> Result<(), RunError> {
    let runtime = MioRuntime::new()?;
    let host = Host::new(node, setup, observe, runtime)?;
    run_blocking(host.run()).map_err(RunError)
}

/// Token 0 is the signals'; watched sources count up from 1, never reused.
const SIGNALS: Token = Token(0);

struct Watched {
    token: Token,
    fd: RawFd,
    read: bool,
    write: bool,
}

impl Watched {
    fn interest(&self) -> Interest {
        match (self.read, self.write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            // mio cannot register for nothing; an edge-triggered readable event for a stream
            // that has ended comes once and is ignored by the host.
            (_, false) => Interest::READABLE,
        }
    }
}

struct MioRuntime {
    poll: Poll,
    events: Events,
    signals: Signals,
    watched: IdMap<Source, Watched>,
    /// What a token stands for; a token missing here is stale and its events are ignored.
    sources: IdMap<Token, Source>,
    next: usize,
}

impl MioRuntime {
    fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut signals = Signals::new([SIGCHLD, SIGINT, SIGTERM])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            signals,
            watched: IdMap::default(),
            sources: IdMap::default(),
            next: SIGNALS.0,
        })
    }

    fn change(&mut self, source: Source, f: impl FnOnce(&mut Watched)) {
        let Some(watched) = self.watched.get_mut(&source) else {
            return;
        };
        let before = watched.interest();
        f(watched);
        // Every flush asks; only a change is worth a system call.
        if before != watched.interest() {
            let _ = self.poll.registry().reregister(
                &mut SourceFd(&watched.fd),
                watched.token,
                watched.interest(),
            );
        }
    }
}

impl Runtime for MioRuntime {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        self.next += 1;
        let token = Token(self.next);
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        let watched = Watched {
            token,
            fd,
            read: true,
            write: false,
        };
        self.watched.insert(source, watched);
        self.sources.insert(token, source);
        Ok(())
    }

    fn want_read(&mut self, source: Source, read: bool) {
        self.change(source, |w| w.read = read);
    }

    fn want_write(&mut self, source: Source, write: bool) {
        self.change(source, |w| w.write = write);
    }

    fn unwatch(&mut self, source: Source) {
        if let Some(watched) = self.watched.remove(&source) {
            self.sources.remove(&watched.token);
            let _ = self.poll.registry().deregister(&mut SourceFd(&watched.fd));
        }
    }

    /// Blocks in the call; the future is ready at once.
    async fn wait(&mut self, deadline: Option<Instant>, wake: &mut Wake) -> io::Result<()> {
        let timeout = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            if event.token() == SIGNALS {
                wake.signals.extend(self.signals.pending());
            } else if let Some(source) = self.sources.get(&event.token()) {
                wake.ready.push(Ready {
                    source: *source,
                    readable: event.is_readable() || event.is_read_closed(),
                    writable: event.is_writable(),
                    hangup: event.is_read_closed(),
                });
            }
        }
        Ok(())
    }

    fn now(&self) -> Now {
        system_now()
    }
}
