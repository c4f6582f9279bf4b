//! A fake node for the worker tests: it listens on a Unix socket in a fresh directory under
//! /tmp, spawns the echo worker as a real child process the way the node does, and speaks the
//! worker channel with the core's codec. Every wait is a read or a wait with a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cocaine_core::codec::worker::{self, JobMeta, WorkerMessage};
use cocaine_core::codec::FrameDecoder;

/// Long enough for a loaded 2-core machine, short enough that a hang fails fast.
pub const PATIENCE: Duration = Duration::from_secs(5);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// What a read produced.
#[derive(Debug, PartialEq)]
pub enum Got {
    Msg(WorkerMessage),
    Eof,
    Timeout,
}

pub struct FakeNode {
    dir: PathBuf,
    pub child: Child,
    stream: UnixStream,
    decoder: FrameDecoder,
}

impl FakeNode {
    /// Spawns the worker with heartbeats rare enough not to matter, then accepts it.
    pub fn start() -> FakeNode {
        FakeNode::start_with(&[])
    }

    /// Spawns the worker with extra environment (overriding the defaults), then accepts it.
    pub fn start_with(env: &[(&str, &str)]) -> FakeNode {
        let dir = std::env::temp_dir().join(format!(
            "cocaine-worker-test-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("w.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocaine-echo-worker"));
        cmd.arg("--socket")
            .arg(&socket)
            .env("COCAINE_SOCKET", &socket)
            .env("COCAINE_WORKER_ID", "w-test")
            .env("COCAINE_APP", "test")
            .env("COCAINE_HEARTBEAT_MS", "60000")
            .env("COCAINE_TIMEOUT_MS", "30000")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(listener.accept().map(|(s, _)| s));
        });
        let stream = rx
            .recv_timeout(PATIENCE)
            .expect("the worker did not connect")
            .unwrap();
        FakeNode {
            dir,
            child,
            stream,
            decoder: FrameDecoder::new(64 << 20),
        }
    }

    /// Sends what `encode` appends (one or more framed messages).
    pub fn send(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        let mut buf = BytesMut::new();
        encode(&mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    /// Starts job `sid` and sends its whole request: `[3]`, one `[4]` per chunk, `[5]`.
    pub fn job(&mut self, sid: u64, event: &str, chunks: &[&[u8]]) {
        self.send(|b| {
            worker::encode_invoke(b, sid, event, &JobMeta::default());
            for chunk in chunks {
                worker::encode_chunk(b, sid, chunk);
            }
            worker::encode_choke(b, sid);
        });
    }

    /// The next message, heartbeats included.
    pub fn recv(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.decoder.next_frame().unwrap() {
                return Got::Msg(WorkerMessage::decode(&frame).unwrap());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return Got::Eof,
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Got::Timeout
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Got::Eof,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next message that is not a heartbeat; panics on anything else.
    pub fn expect(&mut self) -> WorkerMessage {
        loop {
            match self.recv(PATIENCE) {
                Got::Msg(WorkerMessage::Heartbeat) => continue,
                Got::Msg(msg) => return msg,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// Reads the handshake, which must come first.
    pub fn handshake(&mut self) -> WorkerMessage {
        let msg = self.expect();
        assert!(
            matches!(msg, WorkerMessage::Handshake { .. }),
            "not a handshake: {msg:?}"
        );
        msg
    }

    /// Checks that nothing but heartbeats arrives within `window`.
    pub fn expect_nothing(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Got::Timeout => return,
                Got::Msg(WorkerMessage::Heartbeat) => continue,
                other => panic!("expected nothing, got {other:?}"),
            }
        }
    }

    /// Closes the node's side of the channel.
    pub fn hang_up(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Waits for the worker to exit, checking its state every few milliseconds.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `[4, sid, data]`.
pub fn chunk(sid: u64, data: &[u8]) -> WorkerMessage {
    WorkerMessage::Chunk {
        sid,
        data: bytes::Bytes::copy_from_slice(data),
    }
}

/// `[5, sid]`.
pub fn choke(sid: u64) -> WorkerMessage {
    WorkerMessage::Choke { sid }
}
