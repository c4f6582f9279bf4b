//! The loop itself.

use std::io;
use std::time::{Duration, Instant};

use cocaine_core::node::{Node, Output};
use cocaine_os::host::{Control, Host, Setup};
use mio::{Events, Interest, Poll};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::io::{MioReadiness, SIGNALS};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up the event loop: {0}")]
    Setup(#[source] io::Error),
    #[error("the event loop failed: {0}")]
    Poll(#[source] io::Error),
}

/// Runs `node` until it reports `Output::Stopped` after a shutdown: first `setup.first`, then
/// whatever comes (IO, time, signals, `setup.inbox`); store operations go to a thread writing
/// `setup.store`. Every output that is not IO (logs, app events, `Fatal`) goes to `observe`.
pub fn run(
    node: Node,
    setup: Setup,
    observe: &mut dyn FnMut(&Output) -> Control,
) -> Result<(), RunError> {
    let mut poll = Poll::new().map_err(RunError::Setup)?;
    let mut signals = Signals::new([SIGCHLD, SIGINT, SIGTERM]).map_err(RunError::Setup)?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(RunError::Setup)?;
    let registry = poll.registry().try_clone().map_err(RunError::Setup)?;
    let mut host =
        Host::new(node, setup, observe, MioReadiness::new(registry)).map_err(RunError::Setup)?;
    let mut events = Events::with_capacity(1024);
    loop {
        let busy = host.settle();
        if host.stopped() {
            return Ok(());
        }
        let timeout = if busy {
            Some(Duration::ZERO)
        } else {
            host.next_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RunError::Poll(e)),
        }
        host.woke();
        for event in events.iter() {
            if event.token() == SIGNALS {
                for signal in signals.pending() {
                    host.signal(signal);
                }
                continue;
            }
            // A source unwatched earlier in this pass is stale: skip it.
            let Some(source) = host.readiness.sources.get(&event.token()).copied() else {
                continue;
            };
            host.ready(
                source,
                event.is_readable() || event.is_read_closed(),
                event.is_writable(),
            );
        }
    }
}
