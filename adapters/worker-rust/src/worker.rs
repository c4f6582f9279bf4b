//! The builder that collects handlers, and the run loop that connects and serves.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::thread;

use cocaine_core::codec::worker::{encode_handshake, encode_heartbeat, PROTOCOL_VERSION};

use crate::config::{Config, ConfigError};
use crate::error::{HandlerError, WorkerError};
use crate::group;
use crate::handler::{Handler, Handlers, Lifecycle};
use crate::output::Output;
use crate::session::Session;
use crate::stream::{RequestStream, Response};

/// A worker: handlers by event name, and the settings to reach the node.
///
/// ```no_run
/// use cocaine_worker::{HandlerError, Worker};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     Worker::from_env()?
///         .on("echo", |request: Vec<u8>| Ok(vec![request]))
///         .on_stream("upper", |request, mut response| {
///             for chunk in request {
///                 response.write(&chunk.to_ascii_uppercase())?;
///             }
///             Ok(())
///         })
///         .on("fail", |_| Err(HandlerError::with_code(418, "no")))
///         .run()?;
///     Ok(())
/// }
/// ```
pub struct Worker {
    config: Config,
    handlers: Handlers,
    inline: bool,
    defer_cancel: bool,
}

impl Worker {
    /// A worker configured the way the node spawns it: `--socket PATH` or `COCAINE_SOCKET`,
    /// `COCAINE_WORKER_ID`, `COCAINE_APP`, `COCAINE_HEARTBEAT_MS`, `COCAINE_TIMEOUT_MS`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming what is missing or malformed.
    pub fn from_env() -> Result<Worker, ConfigError> {
        Ok(Worker::new(Config::from_env()?))
    }

    /// A worker with an explicit configuration and no handlers.
    pub fn new(config: Config) -> Worker {
        Worker {
            config,
            handlers: Handlers::default(),
            inline: false,
            defer_cancel: false,
        }
    }

    /// The configuration the worker will run with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles `event` with a plain handler: the whole request in, reply chunks out (an empty
    /// list is a reply without chunks). Registering a name again replaces its handler.
    #[must_use]
    pub fn on<F>(mut self, event: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Vec<u8>) -> Result<Vec<Vec<u8>>, HandlerError> + Send + Sync + 'static,
    {
        self.handlers
            .by_name
            .insert(event.into(), Handler::Plain(Arc::new(handler)));
        self
    }

    /// Handles `event` with a streaming handler: it starts at the node's `[3]`, reads request
    /// chunks as they arrive and writes reply chunks as it makes them.
    #[must_use]
    pub fn on_stream<F>(mut self, event: impl Into<String>, handler: F) -> Self
    where
        F: Fn(RequestStream, Response) -> Result<(), HandlerError> + Send + Sync + 'static,
    {
        self.handlers
            .by_name
            .insert(event.into(), Handler::Stream(Arc::new(handler)));
        self
    }

    /// Handles every event that has no handler of its own with a streaming handler, which
    /// finds the event's name in [`RequestStream::event`]. Without one, such events fail
    /// with 404. The native app host uses it: a native library handles every event itself.
    #[must_use]
    pub fn fallback_stream<F>(mut self, handler: F) -> Self
    where
        F: Fn(RequestStream, Response) -> Result<(), HandlerError> + Send + Sync + 'static,
    {
        self.handlers.fallback = Some(Handler::Stream(Arc::new(handler)));
        self
    }

    /// Answers a cancel when the job's handler returns (`true`) rather than at once (`false`,
    /// the default).
    ///
    /// At once, the node gets 499 straight away and the handler runs on unseen: right when
    /// handlers notice cancels and stop soon. Deferred, the cancelled job keeps its slot
    /// until the handler returns (its writes fail as cancelled meanwhile, its request stream
    /// ends, and whatever it returns is replaced by 499), so a handler that ignores the
    /// cancel shows up at the node as a job that did not answer, and the node kills the
    /// worker after `termination-timeout`. Native apps use it: their code may not look at
    /// cancels at all, and must never see two calls at once on an instance that was promised
    /// one at a time.
    #[must_use]
    pub fn defer_cancel(mut self, yes: bool) -> Self {
        self.defer_cancel = yes;
        self
    }

    /// Runs plain handlers inline (`true`) or on threads of their own (`false`, the default).
    ///
    /// Inline, a plain handler ([`Worker::on`]) runs on the thread that reads the channel,
    /// with no hand-off to another thread, and the replies to the jobs found in one read
    /// leave in one write. This is right for fast, CPU-bound handlers, where waking a thread
    /// per job would cost more than the job. The price: while a handler runs, the worker
    /// reads nothing else, so a cancel or a second job waits until it returns (a slow
    /// handler such as a sleep just holds up the jobs behind it), and replies already made
    /// from the same read wait with it. Heartbeats still flow from their own thread, so a
    /// slow handler does not make the worker look dead. Streaming handlers
    /// ([`Worker::on_stream`]) keep their own threads either way, since they must read
    /// request chunks while they run.
    #[must_use]
    pub fn inline(mut self, yes: bool) -> Self {
        self.inline = yes;
        self
    }

    /// Connects to the node, handshakes and serves jobs.
    ///
    /// Returns `Ok(())` when the node closes the channel or, after the node's terminate, once
    /// the running jobs are done. Jobs still running when this returns are abandoned: the
    /// process is expected to exit.
    ///
    /// # Errors
    ///
    /// [`WorkerError::Connect`] if the socket cannot be reached, [`WorkerError::NodeSilent`]
    /// after the configured timeout without a byte from the node, [`WorkerError::Io`] or
    /// [`WorkerError::Framing`] if the channel breaks.
    pub fn run(self) -> Result<(), WorkerError> {
        let Worker {
            config,
            handlers,
            inline,
            defer_cancel,
        } = self;
        let stream =
            UnixStream::connect(&config.socket).map_err(|source| WorkerError::Connect {
                path: config.socket.clone(),
                source,
            })?;
        // Any byte from the node resets this, so it is exactly the silence timeout.
        stream.set_read_timeout(Some(config.timeout))?;
        let output = Arc::new(Output::new(
            stream.try_clone()?,
            defer_cancel,
            config.max_message,
        )?);
        output.send(|buf| {
            encode_handshake(buf, &config.worker_id, PROTOCOL_VERSION, std::process::id());
        })?;

        // The heartbeat thread ends when `stop` is dropped, whichever way this returns.
        let (stop, stopped) = channel::<()>();
        let beat = output.clone();
        let interval = config.heartbeat;
        thread::Builder::new()
            .name("cocaine-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if beat.send(encode_heartbeat).is_err() {
                        return;
                    }
                }
            })?;

        let life = Arc::new(Lifecycle::default());
        let session = Session::new(
            Arc::new(handlers),
            stream,
            output.clone(),
            life.clone(),
            config.max_message,
        )?;
        let result = group::start(session, output.clone(), life, inline)?
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("every worker thread is gone").into()));
        // Replies inline jobs held, e.g. the last job before a terminate. A node that hung up
        // cannot take them, which is not worth reporting.
        let _ = output.flush_held();
        drop(stop);
        output.shutdown(Shutdown::Both);
        result
    }
}
