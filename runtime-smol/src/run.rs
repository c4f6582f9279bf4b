//! The loop itself: one task owns the node and alternates between settling and waiting.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::Poll;

use cocaine_core::node::{Node, Output};
use cocaine_os::host::{Control, Host, Setup};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;
use smol::future::{self, Future};
use smol::Timer;

use crate::io::{watch, Ready, SmolReadiness};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up the event loop: {0}")]
    Setup(#[source] io::Error),
}

/// What one wait found.
struct Woke {
    signals: bool,
    ready: Vec<Ready>,
}

/// Runs `node` until it reports `Output::Stopped` after a shutdown: first `setup.first`, then
/// whatever comes (IO, time, signals, `setup.inbox`); store operations go to a thread writing
/// `setup.store`. Every output that is not IO (logs, app events, `Fatal`) goes to `observe`.
pub fn run(
    node: Node,
    setup: Setup,
    observe: &mut dyn FnMut(&Output) -> Control,
) -> Result<(), RunError> {
    // Signals arrive as bytes on a self-pipe, which the reactor watches like any socket.
    let (read, write) = UnixStream::pair().map_err(RunError::Setup)?;
    read.set_nonblocking(true).map_err(RunError::Setup)?;
    write.set_nonblocking(true).map_err(RunError::Setup)?;
    let mut signals =
        SignalDelivery::with_pipe(read, write, SignalOnly, [SIGCHLD, SIGINT, SIGTERM])
            .map_err(RunError::Setup)?;
    let signal_pipe = watch(signals.get_read().as_raw_fd()).map_err(RunError::Setup)?;
    let mut host =
        Host::new(node, setup, observe, SmolReadiness::default()).map_err(RunError::Setup)?;
    smol::block_on(async {
        let mut ready = Vec::new();
        loop {
            let busy = host.settle();
            if host.stopped() {
                return Ok(());
            }
            let mut timer = match host.next_timeout() {
                Some(at) if !busy => Timer::at(at),
                _ => Timer::never(),
            };
            let wait = future::poll_fn(|cx| {
                let signals = signal_pipe.poll_readable(cx).is_ready();
                host.readiness.poll_ready(cx, &mut ready);
                let timed_out = Pin::new(&mut timer).poll(cx).is_ready();
                if signals || timed_out || !ready.is_empty() {
                    Poll::Ready(Woke {
                        signals,
                        ready: std::mem::take(&mut ready),
                    })
                } else {
                    Poll::Pending
                }
            });
            let woke = if busy {
                // An endpoint has more messages: do not sleep, but let the reactor report
                // what else became ready meanwhile (it runs while this task yields).
                future::or(wait, async {
                    future::yield_now().await;
                    Woke {
                        signals: false,
                        ready: Vec::new(),
                    }
                })
                .await
            } else {
                wait.await
            };
            host.woke();
            if woke.signals {
                for signal in signals.pending() {
                    host.signal(signal);
                }
            }
            for r in &woke.ready {
                host.ready(r.source, r.readable, r.writable);
            }
            ready = woke.ready;
            ready.clear();
        }
    })
}
