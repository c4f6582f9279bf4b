//! The DEALER socket and the frames it has received but not yet handed out.
//!
//! A multipart message may carry several protocol messages (docs/protocol.md §2), and a caller
//! waiting for one sid must not lose the others, so frames are queued and decoded one at a
//! time: a bad frame costs only itself.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use cocaine_core::codec::native::{encode_pong, kind, NativeMessage};
use cocaine_core::codec::DecodeError;

use crate::error::ClientError;
use crate::reply::{Reply, ReplyKind, Sid};

/// Largest reply frame accepted by default: the protocol's default `max-message`.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A decoded message for the client.
pub(crate) enum Incoming {
    Reply(Reply),
    Pong(u64),
}

pub(crate) struct Wire {
    socket: zmq::Socket,
    frames: VecDeque<Vec<u8>>,
    pub max_message: usize,
}

impl Wire {
    pub fn connect(
        ctx: &zmq::Context,
        endpoint: &str,
        send_timeout: Duration,
    ) -> Result<Wire, ClientError> {
        let socket = ctx.socket(zmq::DEALER)?;
        // Dropping a client must not hang on unsent messages to a node that is gone.
        socket.set_linger(0)?;
        let wire = Wire {
            socket,
            frames: VecDeque::new(),
            max_message: DEFAULT_MAX_MESSAGE,
        };
        wire.set_send_timeout(send_timeout)?;
        wire.socket.connect(endpoint)?;
        Ok(wire)
    }

    /// Bounds how long a send may wait for room (the high-water mark) before [`Timeout`].
    ///
    /// [`Timeout`]: ClientError::Timeout
    pub fn set_send_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(-1);
        self.socket.set_sndtimeo(ms)?;
        Ok(())
    }

    /// Sends `frames` as one multipart message.
    pub fn send(&self, frames: &[&[u8]]) -> Result<(), ClientError> {
        self.socket
            .send_multipart(frames.iter().copied(), 0)
            .map_err(|e| match e {
                zmq::Error::EAGAIN => ClientError::Timeout,
                e => ClientError::Zmq(e),
            })
    }

    /// Sends one frame if there is room now; for messages nobody waits on (cancels of
    /// abandoned calls, pongs), which must not block the caller.
    pub fn send_now(&self, frame: &[u8]) {
        let _ = self.socket.send(frame, zmq::DONTWAIT);
    }

    /// The next message, waiting until `deadline` (`None`: for ever); `Ok(None)` on timeout.
    /// Pings from the node are answered here.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Incoming>, ClientError> {
        loop {
            while let Some(frame) = self.frames.pop_front() {
                if let Some(msg) = self.decode(&frame)? {
                    return Ok(Some(msg));
                }
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    fn decode(&self, frame: &[u8]) -> Result<Option<Incoming>, DecodeError> {
        if frame.is_empty() {
            // A delimiter frame, tolerated for DEALER/REQ symmetry.
            return Ok(None);
        }
        let reply = |sid, kind| {
            Some(Incoming::Reply(Reply {
                sid: Sid(sid),
                kind,
            }))
        };
        Ok(match NativeMessage::decode(frame, self.max_message)? {
            NativeMessage::Chunk { sid, data } => reply(sid, ReplyKind::Chunk(Vec::from(data))),
            NativeMessage::Choke { sid } => reply(sid, ReplyKind::End),
            NativeMessage::Error { sid, code, message } => {
                reply(sid, ReplyKind::Error { code, message })
            }
            NativeMessage::Ping { token } => {
                self.send_now(&encode_pong(token));
                None
            }
            NativeMessage::Pong { token } => Some(Incoming::Pong(token)),
            // Well-formed, but only a client sends these: for us they are as bad as garbage.
            NativeMessage::Open { .. } | NativeMessage::OpenInSession { .. } => {
                return Err(DecodeError::UnknownKind(kind::OPEN))
            }
            NativeMessage::Cancel { .. } => return Err(DecodeError::UnknownKind(kind::CANCEL)),
        })
    }

    /// Receives one multipart message into the queue; `false` if none came by `deadline`.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<bool, ClientError> {
        loop {
            // Try first: when replies are already queued in libzmq this saves the poll.
            match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(parts) => {
                    self.frames.extend(parts);
                    return Ok(true);
                }
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let timeout_ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    // Round up, so a sub-millisecond wait does not spin on poll(0).
                    i64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
                }
            };
            match self.socket.poll(zmq::POLLIN, timeout_ms) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
