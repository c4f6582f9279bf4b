//! One ZMTP connection as seen from a ROUTER: greeting, NULL handshake, then frames.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::command::{encode_command, Command, Metadata};
use super::greeting::{self, Greeting, GREETING_LEN};
use super::{ZmtpError, FLAG_COMMAND, FLAG_LONG, FLAG_MORE, MAX_COMMAND};

/// The socket types a ROUTER talks to (RFC 37's compatibility table).
const PEERS: [&str; 3] = ["DEALER", "REQ", "ROUTER"];

/// What the peer said about itself in its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub version: (u8, u8),
    pub socket_type: String,
    /// Its `Identity` / `Routing-Id` property, if any: kept for logs only.
    pub identity: Option<Bytes>,
}

#[derive(Debug)]
enum State {
    Greeting,
    /// Greeting read; waiting for the peer's READY.
    Handshake(Greeting),
    Open(Peer),
    Failed(ZmtpError),
}

/// One peer's connection: bytes in ([`Connection::push`]), messages out
/// ([`Connection::poll`]); bytes to write accumulate in [`Connection::pending`].
#[derive(Debug)]
pub struct Connection {
    state: State,
    input: BytesMut,
    output: BytesMut,
    /// Frames of the message being received.
    frames: Vec<Bytes>,
    /// Its size on the wire so far, headers included (so that empty frames count too).
    size: u64,
    max_message: usize,
    /// The largest one message frame may be (its body; `max_message` bounds the message).
    max_frame: usize,
}

/// A frame header read from the input.
struct Header {
    flags: u8,
    len: usize,
    size: u64,
}

impl Connection {
    /// A new connection, with our greeting and READY already queued: NULL needs nothing from
    /// the peer before them, so both go out in the first write.
    pub fn new(max_message: usize) -> Self {
        let mut output = BytesMut::with_capacity(256);
        output.put_slice(&greeting::ours());
        let ready = vec![("Socket-Type".to_owned(), Bytes::from_static(b"ROUTER"))];
        encode_command(&Command::Ready(ready), &mut output);
        Self {
            state: State::Greeting,
            input: BytesMut::new(),
            output,
            frames: Vec::new(),
            size: 0,
            max_message,
            max_frame: max_message,
        }
    }

    /// Limits frames to `max_frame` bytes each, below the message's limit: a peer is then cut
    /// off from the header of a frame over it, as libzmq does with `ZMQ_MAXMSGSIZE`.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// New limits for what has not been read yet (a frame or message already begun is
    /// checked again as it goes on).
    pub fn set_limits(&mut self, max_frame: usize, max_message: usize) {
        self.max_frame = max_frame;
        self.max_message = max_message;
    }

    /// Takes bytes read from the peer. Call [`Connection::poll`] after each push: checks
    /// (the size limit among them) happen there, before more is kept.
    pub fn push(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Failed(_)) {
            self.input.extend_from_slice(bytes);
        }
    }

    /// The next whole message, None if more bytes are needed. An error is final: every
    /// later call returns it again.
    pub fn poll(&mut self) -> Result<Option<Vec<Bytes>>, ZmtpError> {
        loop {
            let step = match &self.state {
                State::Failed(error) => return Err(error.clone()),
                State::Greeting => self.greeting(),
                State::Handshake(_) | State::Open(_) => self.frame(),
            };
            match step {
                Ok(Step::Again) => {}
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Message(frames)) => return Ok(Some(frames)),
                Err(error) => {
                    self.fail(&error);
                    return Err(error);
                }
            }
        }
    }

    /// The peer closed its side: an error if it stopped inside a greeting, handshake, frame
    /// or multipart message.
    pub fn finish(&self) -> Result<(), ZmtpError> {
        match &self.state {
            State::Failed(error) => Err(error.clone()),
            State::Greeting => Err(ZmtpError::Truncated("the greeting")),
            State::Handshake(_) => Err(ZmtpError::Truncated("the handshake")),
            State::Open(_) if !self.input.is_empty() => Err(ZmtpError::Truncated("a frame")),
            State::Open(_) if !self.frames.is_empty() => {
                Err(ZmtpError::Truncated("a multipart message"))
            }
            State::Open(_) => Ok(()),
        }
    }

    /// The peer, once its READY was read.
    pub fn peer(&self) -> Option<&Peer> {
        match &self.state {
            State::Open(peer) => Some(peer),
            _ => None,
        }
    }

    /// Queues a message (its frames, in order) for the peer.
    pub fn send(&mut self, frames: &[Bytes]) {
        encode_message(frames, &mut self.output);
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> &[u8] {
        &self.output
    }

    /// `n` bytes of [`Connection::pending`] were written.
    pub fn written(&mut self, n: usize) {
        self.output.advance(n);
    }

    fn fail(&mut self, error: &ZmtpError) {
        // Tell the peer why, if it got as far as reading commands and did not cause it by
        // an error of its own (RFC 37: ERROR, then close).
        if matches!(self.state, State::Handshake(_) | State::Open(_))
            && !matches!(error, ZmtpError::Peer(_))
        {
            encode_command(&Command::Error(error.to_string()), &mut self.output);
        }
        self.state = State::Failed(error.clone());
        self.input = BytesMut::new();
        self.frames = Vec::new();
    }

    fn greeting(&mut self) -> Result<Step, ZmtpError> {
        let have = self.input.len().min(GREETING_LEN);
        greeting::check_prefix(&self.input[..have])?;
        if have < GREETING_LEN {
            return Ok(Step::NeedMore);
        }
        let bytes = self.input.split_to(GREETING_LEN);
        let whole: &[u8; GREETING_LEN] = bytes[..].try_into().expect("64 bytes");
        self.state = State::Handshake(greeting::parse(whole)?);
        Ok(Step::Again)
    }

    fn header(&self) -> Result<Option<Header>, ZmtpError> {
        let Some(&flags) = self.input.first() else {
            return Ok(None);
        };
        if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
            return Err(ZmtpError::ReservedFlags(flags));
        }
        let (len, size) = if flags & FLAG_LONG != 0 {
            let Some(size) = self.input.get(1..9) else {
                return Ok(None);
            };
            (9, u64::from_be_bytes(size.try_into().expect("8 bytes")))
        } else {
            let Some(&size) = self.input.get(1) else {
                return Ok(None);
            };
            (2, u64::from(size))
        };
        Ok(Some(Header { flags, len, size }))
    }

    fn frame(&mut self) -> Result<Step, ZmtpError> {
        let Some(Header { flags, len, size }) = self.header()? else {
            return Ok(Step::NeedMore);
        };
        let command = flags & FLAG_COMMAND != 0;
        if command {
            if flags & FLAG_MORE != 0 {
                return Err(ZmtpError::Malformed("command frame with MORE set"));
            }
            if size > MAX_COMMAND as u64 {
                return Err(ZmtpError::CommandTooLarge {
                    size,
                    limit: MAX_COMMAND,
                });
            }
        } else {
            if let State::Handshake(_) = self.state {
                return Err(ZmtpError::ExpectedReady("a message frame".to_owned()));
            }
            let total = self.size.saturating_add(len as u64).saturating_add(size);
            if total > self.max_message as u64 {
                return Err(ZmtpError::TooLarge {
                    size: total,
                    limit: self.max_message,
                });
            }
            if size > self.max_frame as u64 {
                return Err(ZmtpError::FrameTooLarge {
                    size,
                    limit: self.max_frame,
                });
            }
        }
        // Within limits, so this many bytes may be kept.
        let size = size as usize;
        if self.input.len() < len + size {
            self.input.reserve(len + size - self.input.len());
            return Ok(Step::NeedMore);
        }
        self.input.advance(len);
        let body = self.input.split_to(size).freeze();
        if command {
            self.command(&body)?;
            return Ok(Step::Again);
        }
        self.size += (len + size) as u64;
        self.frames.push(body);
        if flags & FLAG_MORE != 0 {
            return Ok(Step::Again);
        }
        self.size = 0;
        Ok(Step::Message(std::mem::take(&mut self.frames)))
    }

    fn command(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        let command = Command::decode(body)?;
        match (&self.state, command) {
            (_, Command::Error(reason)) => Err(ZmtpError::Peer(reason)),
            (State::Handshake(greeting), Command::Ready(metadata)) => {
                let peer = check_ready(*greeting, metadata)?;
                self.state = State::Open(peer);
                Ok(())
            }
            (State::Handshake(_), other) => Err(ZmtpError::ExpectedReady(name(&other).to_owned())),
            (_, Command::Ready(_)) => Err(ZmtpError::Malformed("READY after the handshake")),
            (_, Command::Ping { context, .. }) => {
                encode_command(&Command::Pong { context }, &mut self.output);
                Ok(())
            }
            (_, Command::Pong { .. }) => Ok(()),
        }
    }
}

enum Step {
    Again,
    NeedMore,
    Message(Vec<Bytes>),
}

fn name(command: &Command) -> &'static str {
    match command {
        Command::Ready(_) => "READY",
        Command::Error(_) => "ERROR",
        Command::Ping { .. } => "PING",
        Command::Pong { .. } => "PONG",
    }
}

fn check_ready(greeting: Greeting, metadata: Metadata) -> Result<Peer, ZmtpError> {
    let mut socket_type = None;
    let mut identity = None;
    for (property, value) in metadata {
        if property.eq_ignore_ascii_case("Socket-Type") {
            socket_type = Some(value);
        } else if property.eq_ignore_ascii_case("Identity")
            || property.eq_ignore_ascii_case("Routing-Id")
        {
            identity = Some(value);
        }
    }
    let socket_type = socket_type.ok_or(ZmtpError::NoSocketType)?;
    let socket_type = String::from_utf8_lossy(&socket_type).into_owned();
    if !PEERS.iter().any(|p| p.eq_ignore_ascii_case(&socket_type)) {
        return Err(ZmtpError::SocketType(socket_type));
    }
    if identity.as_ref().is_some_and(|id| id.len() > 255) {
        return Err(ZmtpError::Malformed("identity longer than 255 bytes"));
    }
    Ok(Peer {
        version: (greeting.major, greeting.minor),
        socket_type,
        identity: identity.filter(|id| !id.is_empty()),
    })
}

/// Appends `frames` as one multipart message to `out`.
pub fn encode_message(frames: &[Bytes], out: &mut BytesMut) {
    let last = frames.len().saturating_sub(1);
    out.reserve(frames.iter().map(|f| f.len() + 9).sum());
    for (i, frame) in frames.iter().enumerate() {
        let more = if i < last { FLAG_MORE } else { 0 };
        if frame.len() > 255 {
            out.put_u8(more | FLAG_LONG);
            out.put_u64(frame.len() as u64);
        } else {
            out.put_u8(more);
            out.put_u8(frame.len() as u8);
        }
        out.put_slice(frame);
    }
}
