//! The Cocaine node on smol: the host's [`Runtime`] over `async-io`'s reactor. Each watched
//! descriptor is an `Async` handle polled with a waker of its own, so a wait looks only at
//! the sources that were woken (or reported ready last time and must be re-armed), never
//! at all of them. Signals (SIGCHLD, SIGINT, SIGTERM) come through signal-hook's self-pipe,
//! watched the same way; the deadline is an `async_io::Timer`. The loop and everything it
//! does are [`cocaine_os::host`]'s.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake as WakeTask, Waker};
use std::time::Instant;

use cocaine_core::node::Node;
use cocaine_core::Now;
use cocaine_os::host::{system_now, Host, Observe, Ready, Runtime, Setup, Source, Wake};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;
use smol::future::{self, Future};
use smol::{Async, Timer};

pub use cocaine_os::host::Reaction;
pub use cocaine_os::inbox::Inbox;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up the event loop: {0}")]
    Setup(#[source] io::Error),
    #[error("the event loop failed: {0}")]
    Wait(#[source] io::Error),
}

/// Runs `node` on smol until it stops (see [`Host::run`]).
pub fn run(node: Node, setup: Setup, observe: Observe<'_>) -> Result<(), RunError> {
    let runtime = SmolRuntime::new().map_err(RunError::Setup)?;
    let host = Host::new(node, setup, observe, runtime).map_err(RunError::Setup)?;
    // One task for the whole run: leaving `block_on` wakes async-io's fallback thread, which
    // then drives the reactor, and every wake-up would cost two more thread switches.
    smol::block_on(host.run()).map_err(RunError::Wait)
}

/// A descriptor owned elsewhere (by the host's tables), lent to the reactor. The host
/// unwatches it before closing it.
struct Fd(RawFd);

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the owner keeps the descriptor open while it is watched (the `Runtime`
        // contract).
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// What a waker stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Signals,
    Source(Source),
}

/// Keys woken by the reactor since the last look, and the waiting task to wake.
#[derive(Default)]
struct Woken {
    keys: Mutex<Vec<Key>>,
    task: Mutex<Option<Waker>>,
}

struct KeyWaker {
    key: Key,
    woken: Arc<Woken>,
}

impl WakeTask for KeyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.keys.lock().unwrap().push(self.key);
        if let Some(task) = &*self.woken.task.lock().unwrap() {
            task.wake_by_ref();
        }
    }
}

struct Watched {
    io: Async<Fd>,
    read: bool,
    write: bool,
    waker: Waker,
}

struct SmolRuntime {
    watched: HashMap<Source, Watched>,
    signals: SignalDelivery<UnixStream, SignalOnly>,
    signal_pipe: Async<Fd>,
    signal_waker: Waker,
    woken: Arc<Woken>,
    /// Keys to poll at the next wait besides the woken ones: new, changed, or ready last
    /// time (a handle that reported readiness must be polled again to be re-armed).
    unarmed: Vec<Key>,
}

impl SmolRuntime {
    fn new() -> io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let signals =
            SignalDelivery::with_pipe(read, write, SignalOnly, [SIGCHLD, SIGINT, SIGTERM])?;
        let signal_pipe = Async::new_nonblocking(Fd(signals.get_read().as_raw_fd()))?;
        let woken = Arc::new(Woken::default());
        Ok(Self {
            watched: HashMap::new(),
            signals,
            signal_pipe,
            signal_waker: key_waker(Key::Signals, &woken),
            woken,
            unarmed: vec![Key::Signals],
        })
    }

    /// Polls the keys that may have news; what is ready goes into `wake` (and is polled
    /// again next time, to re-arm it).
    fn poll_keys(&mut self, wake: &mut Wake) {
        let mut keys = std::mem::take(&mut self.unarmed);
        keys.append(&mut self.woken.keys.lock().unwrap());
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let ready = match key {
                Key::Signals => {
                    let cx = &mut Context::from_waker(&self.signal_waker);
                    let caught = self.signal_pipe.poll_readable(cx).is_ready();
                    if caught {
                        wake.signals.extend(self.signals.pending());
                    }
                    caught
                }
                Key::Source(source) => poll_source(source, self.watched.get(&source), wake),
            };
            if ready {
                self.unarmed.push(key);
            }
        }
    }
}

/// Polls one watched source with its own waker; an error (the descriptor failed) counts as
/// ready: the read or write finds out.
fn poll_source(source: Source, watched: Option<&Watched>, wake: &mut Wake) -> bool {
    let Some(w) = watched else { return false };
    let cx = &mut Context::from_waker(&w.waker);
    let readable = w.read && w.io.poll_readable(cx).is_ready();
    let writable = w.write && w.io.poll_writable(cx).is_ready();
    if readable || writable {
        wake.ready.push(Ready {
            source,
            readable,
            writable,
            // The reactor re-arms level-triggered: an end of file not yet read reports again.
            hangup: false,
        });
    }
    readable || writable
}

fn key_waker(key: Key, woken: &Arc<Woken>) -> Waker {
    Waker::from(Arc::new(KeyWaker {
        key,
        woken: woken.clone(),
    }))
}

impl Runtime for SmolRuntime {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        // Ours are non-blocking already, and `ZMQ_FD` belongs to libzmq, whose flags we
        // leave alone.
        let watched = Watched {
            io: Async::new_nonblocking(Fd(fd))?,
            read: true,
            write: false,
            waker: key_waker(Key::Source(source), &self.woken),
        };
        self.watched.insert(source, watched);
        self.unarmed.push(Key::Source(source));
        Ok(())
    }

    fn want_read(&mut self, source: Source, read: bool) {
        if let Some(w) = self.watched.get_mut(&source) {
            if w.read != read {
                w.read = read;
                self.unarmed.push(Key::Source(source));
            }
        }
    }

    fn want_write(&mut self, source: Source, write: bool) {
        if let Some(w) = self.watched.get_mut(&source) {
            if w.write != write {
                w.write = write;
                self.unarmed.push(Key::Source(source));
            }
        }
    }

    fn unwatch(&mut self, source: Source) {
        // Dropping the `Async` removes the descriptor from the reactor.
        self.watched.remove(&source);
    }

    async fn wait(&mut self, deadline: Option<Instant>, wake: &mut Wake) -> io::Result<()> {
        let passed = deadline.is_some_and(|at| at <= Instant::now());
        let mut timer = match deadline {
            Some(at) if !passed => Timer::at(at),
            _ => Timer::never(),
        };
        let mut yielded = false;
        future::poll_fn(|cx| {
            let mut task = self.woken.task.lock().unwrap();
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
            drop(task);
            self.poll_keys(wake);
            if !wake.is_empty() || Pin::new(&mut timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            if passed {
                // Do not sleep, but let the reactor look for what became ready meanwhile
                // (`block_on` processes IO without blocking when the task yields).
                if yielded {
                    return Poll::Ready(());
                }
                yielded = true;
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await;
        Ok(())
    }

    fn now(&self) -> Now {
        system_now()
    }
}
