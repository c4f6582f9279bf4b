//! The host on a fake runtime: real descriptors (polled level-triggered with `poll(2)`),
//! simulated time (a wait with a deadline and nothing ready jumps the clock there instead of
//! sleeping); tests inject wake-ups by handing them to the host directly.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use cocaine_core::manifest::Manifest;
use cocaine_core::node::{AppOrigin, Input, Node, NodeConfig, Output};
use cocaine_core::{AppId, ConnId, EndpointId, Now, WorkerId};

use super::*;

/// Also the runtime of the ZMTP endpoint's tests (`zmtp_endpoint.rs`), which poll it.
#[derive(Default)]
pub(crate) struct Fake {
    /// Simulated time since the start.
    elapsed: Duration,
    start: Option<Now>,
    pub(crate) watched: HashMap<Source, (RawFd, bool, bool)>,
    /// How far waits moved the clock instead of sleeping.
    jumped: Duration,
    /// Waits in a row without a timer that found nothing.
    idle: u32,
}

impl Fake {
    pub(crate) fn new() -> Self {
        Self {
            start: Some(system_now()),
            ..Self::default()
        }
    }

    /// Real readiness of the watched descriptors, without blocking longer than `ms`.
    pub(crate) fn poll(&self, ms: i32, wake: &mut Wake) {
        let sources: Vec<Source> = self.watched.keys().copied().collect();
        let mut fds: Vec<libc::pollfd> = sources
            .iter()
            .map(|s| {
                let (fd, read, write) = self.watched[s];
                let events =
                    if read { libc::POLLIN } else { 0 } | if write { libc::POLLOUT } else { 0 };
                libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                }
            })
            .collect();
        // SAFETY: `fds` is a live array of pollfd of the length given.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        for (source, fd) in sources.into_iter().zip(&fds) {
            let hangup = fd.revents & (libc::POLLHUP | libc::POLLERR) != 0;
            let readable = fd.revents & libc::POLLIN != 0 || hangup;
            let writable = fd.revents & libc::POLLOUT != 0;
            if readable || writable {
                wake.ready.push(Ready {
                    source,
                    readable,
                    writable,
                    hangup,
                });
            }
        }
    }
}

impl Runtime for Fake {
    fn watch(&mut self, source: Source, fd: RawFd) -> io::Result<()> {
        self.watched.insert(source, (fd, true, false));
        Ok(())
    }

    fn want_read(&mut self, source: Source, read: bool) {
        if let Some(w) = self.watched.get_mut(&source) {
            w.1 = read;
        }
    }

    fn want_write(&mut self, source: Source, write: bool) {
        if let Some(w) = self.watched.get_mut(&source) {
            w.2 = write;
        }
    }

    fn unwatch(&mut self, source: Source) {
        self.watched.remove(&source);
    }

    async fn wait(&mut self, deadline: Option<Instant>, wake: &mut Wake) -> io::Result<()> {
        // Workers may exit at any time: reaping is cheap, so every wake-up reports SIGCHLD.
        wake.signals.push(libc::SIGCHLD);
        if let Some(at) = deadline {
            self.poll(0, wake);
            if wake.ready.is_empty() {
                let now = self.now().mono;
                if at > now {
                    self.jumped += at - now;
                    self.elapsed += at - now;
                }
            }
            return Ok(());
        }
        // No timer: only real IO (or a worker's exit) can come; wait a little in real time.
        self.poll(50, wake);
        self.idle = if wake.ready.is_empty() {
            self.idle + 1
        } else {
            0
        };
        assert!(self.idle < 400, "the host waits with nothing to wait for");
        Ok(())
    }

    fn now(&self) -> Now {
        self.start.expect("made with Fake::new") + self.elapsed
    }
}

fn no_output(_: &Output) -> Reaction {
    Reaction::Continue
}

#[test]
fn readiness_comes_before_signals_in_one_wake_up() {
    let mut observe = no_output;
    let setup = Setup::new(Vec::new()).unwrap();
    let inbox = setup.inbox.clone();
    let mut host = Host::new(
        Node::new(NodeConfig::default()),
        setup,
        &mut observe,
        Fake::new(),
    )
    .unwrap();
    let remove = Input::Remove {
        app: "x".into(),
        origin: AppOrigin::CommandLine,
    };
    inbox.push(remove);
    let mut wake = Wake::default();
    wake.signals.push(libc::SIGTERM);
    wake.ready.push(Ready {
        source: Source::Inbox,
        readable: true,
        writable: false,
        hangup: false,
    });
    host.inputs.clear();
    host.woke(&wake, None);
    assert!(
        matches!(
            host.inputs.iter().collect::<Vec<_>>()[..],
            [Input::Remove { .. }, Input::Shutdown]
        ),
        "{:?}",
        host.inputs
    );
}

#[test]
fn the_timer_input_comes_only_when_the_timer_is_due() {
    let mut observe = no_output;
    let setup = Setup::new(Vec::new()).unwrap();
    let mut host = Host::new(
        Node::new(NodeConfig::default()),
        setup,
        &mut observe,
        Fake::new(),
    )
    .unwrap();
    host.inputs.clear();
    let now = host.runtime.now().mono;
    host.woke(&Wake::default(), Some(now + Duration::from_secs(1)));
    host.woke(&Wake::default(), None);
    assert!(host.inputs.is_empty(), "{:?}", host.inputs);
    host.woke(&Wake::default(), Some(now));
    assert!(matches!(
        host.inputs.iter().collect::<Vec<_>>()[..],
        [Input::Tick]
    ));
}

#[test]
fn readiness_of_sources_the_host_no_longer_has_is_ignored() {
    let mut observe = no_output;
    let setup = Setup::new(Vec::new()).unwrap();
    let mut host = Host::new(
        Node::new(NodeConfig::default()),
        setup,
        &mut observe,
        Fake::new(),
    )
    .unwrap();
    host.inputs.clear();
    let worker = WorkerId::new(AppId(7), 1);
    let mut wake = Wake::default();
    for source in [
        Source::Endpoint(EndpointId(99)),
        Source::Listener(worker),
        Source::Channel(worker),
        Source::Output(worker),
        Source::TcpListener(EndpointId(98)),
        Source::Conn(ConnId(5)),
        Source::ZmtpListener(EndpointId(97)),
        Source::ZmtpConn(EndpointId(97), 3),
    ] {
        wake.ready.push(Ready {
            source,
            readable: true,
            writable: true,
            hangup: true,
        });
    }
    wake.signals.push(libc::SIGCHLD);
    host.woke(&wake, None);
    assert!(host.inputs.is_empty(), "{:?}", host.inputs);
    assert!(!host.endpoints.drain(&mut host.inputs), "nothing to drain");
}

/// A worker that never says hello: its startup timeout (30 s) passes on simulated time, the
/// engine kills it, and the node stops when asked; in far less real time than 30 s.
#[test]
fn timers_fire_on_simulated_time_without_sleeping() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("silent-worker");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let json = format!(
        r#"{{"type": "binary", "args": "local://{}",
            "engine": {{"pool-min": 1, "pool-limit": 1, "startup-timeout": 30}},
            "tasks": {{"echo": {{"type": "native-server", "endpoint": "tcp://127.0.0.1:*"}}}}}}"#,
        script.display()
    );
    let manifest = Manifest::parse("silent", json.as_bytes(), Some(dir.path())).unwrap();
    let deploy = Input::Deploy {
        manifest: Box::new(manifest),
        origin: AppOrigin::CommandLine,
    };
    let config = NodeConfig {
        run_dir: dir.path().to_owned(),
        ..NodeConfig::default()
    };
    let mut seen = Vec::new();
    let mut observe = |output: &Output| {
        seen.push(format!("{output:?}"));
        if format!("{output:?}").contains("no handshake within 30000 ms") {
            Reaction::Shutdown
        } else {
            Reaction::Continue
        }
    };
    let started = Instant::now();
    let setup = Setup::new(vec![deploy]).unwrap();
    let mut host = Host::new(Node::new(config), setup, &mut observe, Fake::new()).unwrap();
    let wake = &mut Wake::default();
    while run_blocking(host.turn(wake)).unwrap() {}
    let jumped = host.runtime.jumped;
    drop(host);
    let real = started.elapsed();
    assert!(
        jumped >= Duration::from_secs(30),
        "the clock moved {jumped:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.contains("no handshake within 30000 ms")),
        "{seen:#?}"
    );
    assert!(seen.iter().any(|s| s.contains("Stopped")), "{seen:#?}");
    assert!(real < Duration::from_secs(20), "took {real:?} of real time");
}
