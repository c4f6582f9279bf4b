//! The worker channel's transport: a Unix socket per worker at the path the core chose. The
//! runtime listens before spawning, accepts the worker's one connection, then moves bytes.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::write_queue::WriteQueue;

/// Listens at a worker's socket path until the worker connects.
#[derive(Debug)]
pub struct ChannelListener {
    listener: UnixListener,
    path: PathBuf,
}

impl ChannelListener {
    /// Binds at `path`, replacing a stale socket file a crashed node may have left.
    pub fn bind(path: &Path) -> io::Result<Self> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// The worker's connection, if it has connected.
    pub fn accept(&self) -> io::Result<Option<Channel>> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                Ok(Some(Channel {
                    stream,
                    outbox: WriteQueue::default(),
                    eof: false,
                    scratch: vec![0; READ_CHUNK].into_boxed_slice(),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for ChannelListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A connected worker channel with a write queue for what the socket could not take yet.
#[derive(Debug)]
pub struct Channel {
    stream: UnixStream,
    outbox: WriteQueue,
    eof: bool,
    /// Reused for every read, so a read costs a copy of what arrived and nothing more.
    scratch: Box<[u8]>,
}

/// The most one read takes, so one chatty worker cannot starve the rest.
const READ_CHUNK: usize = 64 * 1024;

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes, and whether more may wait: false after a short read, which on a stream
    /// socket means its buffer was empty (anything later makes it readable again).
    Data {
        bytes: Bytes,
        more: bool,
    },
    Nothing,
    Closed,
}

impl Channel {
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Reads what is available, up to a bound so one chatty worker cannot starve the rest.
    /// A short read ends it: the socket had no more, and asking again would only cost a
    /// system call that says so.
    pub fn read(&mut self) -> ReadOutcome {
        if self.eof {
            return ReadOutcome::Closed;
        }
        let mut filled = 0;
        let mut more = false;
        loop {
            match self.stream.read(&mut self.scratch[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    filled += n;
                    more = filled == self.scratch.len();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.eof = true;
                    break;
                }
            }
        }
        if filled > 0 {
            ReadOutcome::Data {
                bytes: Bytes::copy_from_slice(&self.scratch[..filled]),
                more,
            }
        } else if self.eof {
            ReadOutcome::Closed
        } else {
            ReadOutcome::Nothing
        }
    }

    /// Queues bytes to write; [`Channel::flush`] writes them. Queueing first lets a runtime
    /// write everything a pass produced for a worker in one system call.
    pub fn queue(&mut self, bytes: Bytes) {
        self.outbox.push(bytes);
    }

    /// Queues bytes and writes as much as the socket takes now.
    pub fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        self.outbox.push(bytes);
        self.flush()
    }

    /// Writes queued bytes until the socket would block, several buffers per system call.
    pub fn flush(&mut self) -> io::Result<()> {
        self.outbox.flush_to(&mut self.stream)
    }

    /// Whether bytes wait for the socket to drain (the runtime then polls for writability).
    pub fn wants_write(&self) -> bool {
        !self.outbox.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn bytes_flow_both_ways() {
        // Removed with everything in it when the test ends.
        let dir = tempfile::Builder::new()
            .prefix("cocaine-os-test-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("w.sock");
        let listener = ChannelListener::bind(&path).unwrap();
        assert!(listener.accept().unwrap().is_none());
        let mut peer = UnixStream::connect(&path).unwrap();
        let mut channel = loop {
            if let Some(c) = listener.accept().unwrap() {
                break c;
            }
        };
        channel.write(Bytes::from_static(b"ping")).unwrap();
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        peer.write_all(b"pong").unwrap();
        drop(peer);
        let mut received = Vec::new();
        loop {
            match channel.read() {
                ReadOutcome::Data { bytes, .. } => received.extend_from_slice(&bytes),
                ReadOutcome::Nothing => continue,
                ReadOutcome::Closed => break,
            }
        }
        assert_eq!(received, b"pong");
        drop(listener);
        assert!(!path.exists(), "the socket file is removed");
    }
}
