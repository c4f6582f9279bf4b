//! [`Inbox`]: how other threads (the store thread, the folder watcher) hand inputs to a running
//! node. Inputs wait in a queue under a mutex; an eventfd, which the runtime watches like any
//! socket (`Source::Inbox`), wakes the loop, and the host takes the whole queue at once.
//!
//! Order is kept per pushing thread: the queue is FIFO and taken whole.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use cocaine_core::node::Input;

/// A handle to a node's inbox; clone it for each thread that feeds the node.
///
/// Inputs pushed before the loop starts wait for it; inputs pushed after it stopped are
/// dropped with the inbox.
#[derive(Clone)]
pub struct Inbox {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Vec<Input>>,
    /// Counts pushes since the host last looked; readable while non-zero.
    wake: OwnedFd,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("fd", &self.shared.wake.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// A new, empty inbox.
    pub fn new() -> io::Result<Inbox> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Inbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                wake,
            }),
        })
    }

    /// Queues `input` for the node and wakes its loop.
    pub fn push(&self, input: Input) {
        self.queue().push(input);
        // After the push, so the host, woken, finds the input. A full counter (2^64 - 2
        // pushes unread) cannot happen; any other failure leaves the fd readable anyway.
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor we own.
        let _ = unsafe {
            libc::write(
                self.shared.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// The descriptor the runtime watches for readability.
    pub fn fd(&self) -> RawFd {
        self.shared.wake.as_raw_fd()
    }

    /// Takes every queued input, in order, into `into`, and re-arms the wake-up: what the
    /// host does when the descriptor is readable (tests call it to see what was pushed).
    pub fn take(&self, into: &mut impl Extend<Input>) {
        // Reset the counter first: a push that lands after it also writes again, so no
        // wake-up is lost, at worst one is spurious.
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a descriptor we own; EAGAIN when zero.
        let _ = unsafe {
            libc::read(
                self.shared.wake.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        let taken = std::mem::take(&mut *self.queue());
        into.extend(taken);
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Input>> {
        // A thread that panicked while holding the lock left a valid Vec: keep going.
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits until `inbox` is readable or `deadline` passes; then takes what it holds.
    pub(crate) fn wait(inbox: &Inbox, deadline: Instant) -> Vec<Input> {
        let mut pfd = libc::pollfd {
            fd: inbox.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) };
        let mut got = Vec::new();
        inbox.take(&mut got);
        got
    }

    #[test]
    fn a_push_from_another_thread_makes_the_fd_readable_and_is_taken_in_order() {
        let inbox = Inbox::new().unwrap();
        let mut got = Vec::new();
        inbox.take(&mut got);
        assert!(got.is_empty());
        let sender = inbox.clone();
        let thread = std::thread::spawn(move || {
            sender.push(Input::Tick);
            sender.push(Input::Shutdown);
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 2 && Instant::now() < deadline {
            got.extend(wait(&inbox, deadline));
        }
        thread.join().unwrap();
        assert!(matches!(got[..], [Input::Tick, Input::Shutdown]), "{got:?}");
        // Taken whole: nothing left, the fd no longer readable.
        let mut pfd = libc::pollfd {
            fd: inbox.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0);
    }
}
