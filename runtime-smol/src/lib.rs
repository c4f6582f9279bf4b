//! The Cocaine node on smol: the host's [`Runtime`] over `async-io`'s reactor, the whole loop
//! ([`Host::run`]) one task. Each watched descriptor (and signal-hook's self-pipe) is an
//! `Async` handle with a waker of its own, so a wait polls only the handles that were woken
//! or were ready last time (to re-arm them), never all of them.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake as WakeTask, Waker};
use std::time::Instant;

use cocaine_core::ids::IdMap;
use cocaine_core::node::Node;
use cocaine_core::Now;
use cocaine_os::host::{system_now, Host, Observe, Ready, Runtime, Setup, Source, Wake};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::{backend::SignalDelivery, exfiltrator::SignalOnly};
use smol::future::{self, Future};
use smol::{Async, Timer};

/// The loop could not be set up, or waiting failed.
#[derive(Debug, thiserror::Error)]
#[error("the event loop failed: {0}")]
pub struct RunError(#[from] io::Error);

/// Runs `node` on smol until it stops (see [`Host::run`]).
pub fn run(node: Node, setup: Setup, observe: Observe<'_>) -> Result<(), RunError> {
    let runtime = SmolRuntime::new()?;
    let host = Host::new(node, setup, observe, runtime)?;
    // One task for the whole run: each exit from `block_on` wakes async-io's own thread,
    // which then drives the reactor and costs two thread switches per wake-up.
    smol::block_on(host.run()).map_err(RunError)
}

/// What a handle stands for: one of the host's sources, or (none) the signals' pipe.
type Key = Option<Source>;
const SIGNALS: Key = None;

/// Keys the reactor woke since the last look, and the task to wake with them.
#[derive(Default)]
struct Woken {
    keys: Mutex<Vec<Key>>,
    task: Mutex<Option<Waker>>,
}

struct KeyWaker(Key, Arc<Woken>);

impl WakeTask for KeyWaker {
    fn wake(self: Arc<Self>) {
        self.1.keys.lock().unwrap().push(self.0);
        if let Some(task) = &*self.1.task.lock().unwrap() {
            task.wake_by_ref();
        }
    }
}

struct Watched {
    /// Lent by the host, which keeps it open while it is watched.
    io: Async<BorrowedFd<'static>>,
    read: bool,
    write: bool,
    waker: Waker,
}

struct SmolRuntime {
    watched: IdMap<Key, Watched>,
    signals: SignalDelivery<UnixStream, SignalOnly>,
    woken: Arc<Woken>,
    /// Keys to poll at the next wait besides the woken ones: new, changed, or ready last time.
    unarmed: Vec<Key>,
    /// One timer for every wait, moved only when the deadline does: arming an async-io timer
    /// wakes the reactor (an eventfd write, then a wait that returns at once, a read and two
    /// re-arms), which a new timer per wait paid on every wake-up.
    timer: Timer,
    /// The instant `timer` is set for, while it has not fired.
    armed: Option<Instant>,
}

impl SmolRuntime {
    fn new() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let signals =
            SignalDelivery::with_pipe(read, write, SignalOnly, [SIGCHLD, SIGINT, SIGTERM])?;
        let mut runtime = Self {
            watched: IdMap::default(),
            woken: Arc::default(),
            unarmed: Vec::new(),
            signals,
            timer: Timer::never(),
            armed: None,
        };
        runtime.add(SIGNALS, runtime.signals.get_read().as_raw_fd())?;
        Ok(runtime)
    }

    fn add(&mut self, key: Key, fd: RawFd) -> io::Result<()> {
        // SAFETY: the host keeps the descriptor open until it unwatches it (`Runtime::watch`),
        // which drops this handle.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        // Ours are non-blocking already; `ZMQ_FD` is libzmq's, whose flags we leave alone.
        let (io, read, write) = (Async::new_nonblocking(fd)?, true, false);
        let waker = Waker::from(Arc::new(KeyWaker(key, self.woken.clone())));
        let watched = Watched {
            io,
            read,
            write,
            waker,
        };
        self.watched.insert(key, watched);
        self.unarmed.push(key);
        Ok(())
    }

    fn change(&mut self, source: Source, f: impl FnOnce(&mut Watched) -> bool) {
        if self.watched.get_mut(&Some(source)).is_some_and(f) {
            self.unarmed.push(Some(source));
        }
    }

    /// Polls the keys that may have news, each with its own waker; what is ready goes into
    /// `wake` (an error counts as ready: the read or write finds out).
    fn poll_keys(&mut self, wake: &mut Wake) {
        let mut keys = std::mem::take(&mut self.unarmed);
        keys.append(&mut self.woken.keys.lock().unwrap());
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let Some(w) = self.watched.get(&key) else {
                continue;
            };
            let cx = &mut Context::from_waker(&w.waker);
            let readable = w.read && w.io.poll_readable(cx).is_ready();
            let writable = w.write && w.io.poll_writable(cx).is_ready();
            if !readable && !writable {
                continue;
            }
            self.unarmed.push(key);
            match key {
                SIGNALS => wake.signals.extend(self.signals.pending()),
                // The reactor re-arms level-triggered: an unread end of file reports again.
                Some(source) => wake.ready.push(Ready {
                    source,
                    readable,
                    writable,
                    hangup: false,
                }),
            }
        }
    }
}

impl Runtime for SmolRuntime {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        self.add(Some(source), fd)
    }

    fn want_read(&mut self, source: Source, read: bool) {
        self.change(source, |w| std::mem::replace(&mut w.read, read) != read);
    }

    fn want_write(&mut self, source: Source, write: bool) {
        self.change(source, |w| std::mem::replace(&mut w.write, write) != write);
    }

    fn unwatch(&mut self, source: Source) {
        // Dropping the `Async` removes the descriptor from the reactor.
        self.watched.remove(&Some(source));
    }

    async fn wait(&mut self, deadline: Option<Instant>, wake: &mut Wake) -> io::Result<()> {
        let passed = deadline.is_some_and(|at| at <= Instant::now());
        let target = deadline.filter(|_| !passed);
        if target != self.armed {
            match target {
                Some(at) => self.timer.set_at(at),
                None => self.timer.clear(),
            }
            self.armed = target;
        }
        // Out of `self` while the closure borrows it; nothing else touches it meanwhile.
        let mut timer = std::mem::replace(&mut self.timer, Timer::never());
        let mut fired = false;
        let mut yielded = false;
        future::poll_fn(|cx| {
            // The loop is one task for the whole run: its waker does not change.
            (self.woken.task.lock().unwrap()).get_or_insert_with(|| cx.waker().clone());
            self.poll_keys(wake);
            if self.armed.is_some() && Pin::new(&mut timer).poll(cx).is_ready() {
                fired = true;
            }
            if !wake.is_empty() || fired || yielded {
                return Poll::Ready(());
            }
            if passed {
                // No sleep, but one yield: `block_on` then looks for new IO without blocking.
                yielded = true;
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await;
        self.timer = timer;
        if fired {
            // A fired timer is spent until it is set again.
            self.armed = None;
        }
        Ok(())
    }

    fn now(&self) -> Now {
        system_now()
    }
}
