//! The host's readiness on smol: each watched descriptor wrapped in `async_io::Async`.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::task::Context;

use cocaine_os::host::{Readiness, Source};
use smol::Async;

/// A descriptor owned elsewhere (by a `ZmqEndpoint`, `Channel`, `ChannelListener` or
/// `WorkerProcess`), lent to the reactor. The host unwatches it before closing it.
pub(crate) struct Fd(pub RawFd);

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the owner keeps the descriptor open while it is watched (see `Readiness`).
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// Registers `fd` with the reactor as it is: ours are non-blocking already, and `ZMQ_FD`
/// belongs to libzmq, whose flags we leave alone.
pub(crate) fn watch(fd: RawFd) -> io::Result<Async<Fd>> {
    Async::new_nonblocking(Fd(fd))
}

struct Watched {
    io: Async<Fd>,
    read: bool,
    write: bool,
}

#[derive(Default)]
pub(crate) struct SmolReadiness {
    watched: HashMap<Source, Watched>,
}

/// A source found ready by [`SmolReadiness::poll_ready`].
pub(crate) struct Ready {
    pub source: Source,
    pub readable: bool,
    pub writable: bool,
}

impl SmolReadiness {
    /// Registers the task's interest in every watched source (readability, and writability
    /// where wanted) and collects the ones the reactor has reported since.
    pub fn poll_ready(&self, cx: &mut Context<'_>, ready: &mut Vec<Ready>) {
        for (source, watched) in &self.watched {
            // An error (the descriptor failed) counts as ready: the read or write finds out.
            let readable = watched.read && watched.io.poll_readable(cx).is_ready();
            let writable = watched.write && watched.io.poll_writable(cx).is_ready();
            if readable || writable {
                ready.push(Ready {
                    source: *source,
                    readable,
                    writable,
                });
            }
        }
    }
}

impl Readiness for SmolReadiness {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        let io = watch(fd)?;
        let watched = Watched {
            io,
            read: true,
            write: false,
        };
        self.watched.insert(source, watched);
        Ok(())
    }

    fn want_write(&mut self, source: Source, write: bool) {
        if let Some(watched) = self.watched.get_mut(&source) {
            watched.write = write;
        }
    }

    fn want_read(&mut self, source: Source, read: bool) {
        if let Some(watched) = self.watched.get_mut(&source) {
            watched.read = read;
        }
    }

    fn unwatch(&mut self, source: Source) {
        // Dropping the `Async` removes the descriptor from the reactor.
        self.watched.remove(&source);
    }
}
