//! The client against an in-test ROUTER server that speaks the native protocol with the core's
//! codec. Every wait has a deadline; nothing sleeps.

#[path = "support/router.rs"]
mod router;

use std::collections::{HashMap, VecDeque};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cocaine_client::{Client, ClientError, Policy, Reply, ReplyKind, Sid};
use cocaine_core::codec::native::{self, NativeMessage};
use cocaine_core::codec::DecodeError;

const PATIENCE: Duration = Duration::from_secs(5);

/// The server's view of the one client: its routing id and what it sent, in order.
struct Peer {
    socket: zmq::Socket,
    identity: Vec<u8>,
    queue: VecDeque<NativeMessage>,
    /// Frames in each multipart received, in order.
    parts: Vec<usize>,
}

impl Peer {
    /// The next message from the client; panics after [`PATIENCE`].
    fn recv(&mut self) -> NativeMessage {
        if let Some(msg) = self.queue.pop_front() {
            return msg;
        }
        let mut frames = self
            .socket
            .recv_multipart(0)
            .expect("the client sent nothing");
        self.identity = frames.remove(0);
        self.parts.push(frames.len());
        for frame in frames {
            self.queue
                .push_back(NativeMessage::decode(&frame, usize::MAX).unwrap());
        }
        self.recv()
    }

    /// The sid of the next message, which must be an open of `event`.
    fn expect_open(&mut self, event: &str) -> u64 {
        match self.recv() {
            NativeMessage::Open { sid, event: e, .. } if e == event => sid,
            other => panic!("expected an open of {event}, got {other:?}"),
        }
    }

    /// Reads a whole one-shot request of `event`; returns its sid and body.
    fn expect_call(&mut self, event: &str) -> (u64, Vec<u8>) {
        let sid = self.expect_open(event);
        let body = match self.recv() {
            NativeMessage::Chunk { sid: s, data } if s == sid => data.to_vec(),
            other => panic!("expected a chunk, got {other:?}"),
        };
        assert_eq!(self.recv(), NativeMessage::Choke { sid });
        (sid, body)
    }

    /// Sends `frames` as one multipart message to the client.
    fn send(&self, frames: &[&[u8]]) {
        let mut parts: Vec<&[u8]> = vec![&self.identity];
        parts.extend_from_slice(frames);
        self.socket.send_multipart(parts, 0).unwrap();
    }
}

/// Binds a ROUTER on a free loopback port, runs `script` against it in a thread, and returns
/// the endpoint to connect to.
fn serve(script: impl FnOnce(&mut Peer) + Send + 'static) -> (String, JoinHandle<()>) {
    let (socket, endpoint) = router::router(PATIENCE);
    let handle = thread::spawn(move || {
        let mut peer = Peer {
            socket,
            identity: Vec::new(),
            queue: VecDeque::new(),
            parts: Vec::new(),
        };
        script(&mut peer);
    });
    (endpoint, handle)
}

fn client(endpoint: &str) -> Client {
    let mut client = Client::connect(endpoint).unwrap();
    client.set_timeout(PATIENCE).unwrap();
    client
}

fn finish(server: JoinHandle<()>) {
    server.join().expect("the server script failed");
}

#[test]
fn one_shot_call_is_one_multipart_message() {
    let (endpoint, server) = serve(|peer| {
        let (sid, body) = peer.expect_call("echo");
        assert_eq!(peer.parts, vec![3], "open, chunk and end in one multipart");
        peer.send(&[
            &native::encode_chunk(sid, &body),
            &native::encode_choke(sid),
        ]);
    });
    let mut client = client(&endpoint);
    assert_eq!(
        client.call("echo", b"hello").unwrap(),
        vec![b"hello".to_vec()]
    );
    finish(server);
}

#[test]
fn a_reply_of_several_chunks_arrives_whole() {
    let (endpoint, server) = serve(|peer| {
        let (sid, _) = peer.expect_call("split");
        // Separate sends, and an empty delimiter frame the client must skip.
        for part in [&b"a"[..], b"bb", b"ccc"] {
            peer.send(&[&native::encode_chunk(sid, part)]);
        }
        peer.send(&[b"", &native::encode_choke(sid)]);
    });
    let mut client = client(&endpoint);
    let chunks = client.call("split", b"").unwrap();
    assert_eq!(chunks, vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
    finish(server);
}

#[test]
fn streaming_both_ways() {
    let (endpoint, server) = serve(|peer| {
        let sid = peer.expect_open("stream_echo");
        loop {
            match peer.recv() {
                NativeMessage::Chunk { data, .. } => {
                    peer.send(&[&native::encode_chunk(sid, &data)]);
                }
                NativeMessage::Choke { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        peer.send(&[&native::encode_choke(sid)]);
    });
    let mut client = client(&endpoint);
    let sid = client.open("stream_echo", Policy::default()).unwrap();
    for part in [&b"one"[..], b"two"] {
        client.send(sid, part).unwrap();
        let reply = client.recv(PATIENCE).unwrap().unwrap();
        assert_eq!(
            reply,
            Reply {
                sid,
                kind: ReplyKind::Chunk(part.to_vec())
            }
        );
    }
    client.end(sid).unwrap();
    let reply = client.recv(PATIENCE).unwrap().unwrap();
    assert_eq!(
        reply,
        Reply {
            sid,
            kind: ReplyKind::End
        }
    );
    finish(server);
}

#[test]
fn an_error_reply_is_remote_with_code_and_message() {
    let (endpoint, server) = serve(|peer| {
        let (sid, _) = peer.expect_call("nope");
        peer.send(&[&native::encode_error(sid, 404, "no handler for \"nope\"")]);
    });
    let mut client = client(&endpoint);
    match client.call("nope", b"x") {
        Err(ClientError::Remote { code, message }) => {
            assert_eq!(code, 404);
            assert_eq!(message, "no handler for \"nope\"");
        }
        other => panic!("{other:?}"),
    }
    finish(server);
}

#[test]
fn pipelined_requests_are_matched_by_sid_whatever_the_order() {
    let (endpoint, server) = serve(|peer| {
        let mut sids = Vec::new();
        for name in ["a", "b", "c"] {
            let sid = peer.expect_open(name);
            assert!(matches!(peer.recv(), NativeMessage::Chunk { .. }));
            assert_eq!(peer.recv(), NativeMessage::Choke { sid });
            sids.push((name, sid));
        }
        // Answer backwards, interleaved, with a one-shot call in the middle.
        for (name, sid) in sids.iter().rev() {
            peer.send(&[&native::encode_chunk(*sid, name.as_bytes())]);
        }
        let (call, _) = peer.expect_call("d");
        peer.send(&[
            &native::encode_choke(sids[1].1),
            &native::encode_chunk(call, b"d"),
            &native::encode_choke(call),
        ]);
        peer.send(&[&native::encode_choke(sids[0].1)]);
        peer.send(&[&native::encode_error(sids[2].1, 500, "c failed")]);
    });
    let mut client = client(&endpoint);
    let mut names = HashMap::new();
    for name in ["a", "b", "c"] {
        let sid = client.open(name, Policy::default()).unwrap();
        client.send(sid, name.as_bytes()).unwrap();
        client.end(sid).unwrap();
        names.insert(sid, name);
    }
    // Sids are distinct and never the connection's.
    assert_eq!(names.len(), 3);
    assert!(!names.contains_key(&Sid::CONNECTION));
    assert_eq!(client.call("d", b"").unwrap(), vec![b"d".to_vec()]);
    let mut chunks = HashMap::new();
    let mut ends = HashMap::new();
    while ends.len() < 3 {
        let reply = client.recv(PATIENCE).unwrap().expect("a reply");
        match reply.kind {
            ReplyKind::Chunk(data) => {
                chunks.insert(reply.sid, data);
            }
            kind => {
                ends.insert(reply.sid, kind);
            }
        }
    }
    for (sid, name) in &names {
        assert_eq!(chunks[sid], name.as_bytes());
        let expected = if *name == "c" {
            ReplyKind::Error {
                code: 500,
                message: "c failed".into(),
            }
        } else {
            ReplyKind::End
        };
        assert_eq!(ends[sid], expected);
    }
    assert_eq!(client.recv(Duration::from_millis(50)).unwrap(), None);
    finish(server);
}

#[test]
fn cancel_gets_one_terminal_reply() {
    let (endpoint, server) = serve(|peer| {
        let sid = peer.expect_open("slow");
        assert_eq!(peer.recv(), NativeMessage::Choke { sid });
        assert_eq!(peer.recv(), NativeMessage::Cancel { sid });
        peer.send(&[&native::encode_error(sid, 499, "cancelled")]);
    });
    let mut client = client(&endpoint);
    let sid = client.open("slow", Policy::default()).unwrap();
    client.end(sid).unwrap();
    client.cancel(sid).unwrap();
    let reply = client.recv(PATIENCE).unwrap().unwrap();
    assert_eq!(
        reply,
        Reply {
            sid,
            kind: ReplyKind::Error {
                code: 499,
                message: "cancelled".into()
            }
        }
    );
    finish(server);
}

#[test]
fn ping_both_ways() {
    let (endpoint, server) = serve(|peer| {
        let token = match peer.recv() {
            NativeMessage::Ping { token } => token,
            other => panic!("{other:?}"),
        };
        peer.send(&[
            &native::encode_pong(token + 1000),
            &native::encode_pong(token),
        ]);
        // The node may ping too: the client answers while it waits for anything.
        peer.send(&[&native::encode_ping(77)]);
        assert_eq!(peer.recv(), NativeMessage::Pong { token: 77 });
    });
    let mut client = client(&endpoint);
    let rtt = client.ping(PATIENCE).unwrap();
    assert!(rtt < PATIENCE);
    let start = Instant::now();
    while !server.is_finished() && start.elapsed() < PATIENCE {
        assert_eq!(client.recv(Duration::from_millis(20)).unwrap(), None);
    }
    finish(server);
}

#[test]
fn a_silent_server_times_out_and_the_call_is_cancelled() {
    let (endpoint, server) = serve(|peer| {
        let (first, _) = peer.expect_call("silent");
        assert_eq!(peer.recv(), NativeMessage::Cancel { sid: first });
        // Too late: the client must drop these, not hand them to the next call.
        peer.send(&[
            &native::encode_chunk(first, b"late"),
            &native::encode_choke(first),
        ]);
        let (sid, _) = peer.expect_call("echo");
        peer.send(&[
            &native::encode_chunk(sid, b"fresh"),
            &native::encode_choke(sid),
        ]);
    });
    let mut client = client(&endpoint);
    let start = Instant::now();
    let timeout = Duration::from_millis(200);
    let result = client.call_with("silent", b"", Policy::default(), timeout);
    assert!(matches!(result, Err(ClientError::Timeout)), "{result:?}");
    assert!(start.elapsed() >= timeout);
    assert!(start.elapsed() < PATIENCE);
    assert_eq!(client.call("echo", b"").unwrap(), vec![b"fresh".to_vec()]);
    assert_eq!(client.recv(Duration::from_millis(50)).unwrap(), None);
    assert!(matches!(
        client.ping(Duration::from_millis(100)),
        Err(ClientError::Timeout)
    ));
    finish(server);
}

#[test]
fn a_malformed_frame_is_a_protocol_error_and_the_client_goes_on() {
    let (endpoint, server) = serve(|peer| {
        let (first, _) = peer.expect_call("garbage");
        peer.send(&[&[0xc1]]);
        assert_eq!(peer.recv(), NativeMessage::Cancel { sid: first });
        peer.send(&[&native::encode_choke(first)]);
        let (sid, _) = peer.expect_call("echo");
        peer.send(&[
            &native::encode_chunk(sid, b"fine"),
            &native::encode_choke(sid),
        ]);
        // A bad frame among good ones costs only itself.
        let stream = peer.expect_open("s");
        peer.send(&[
            &native::encode_chunk(stream, b"1"),
            &native::encode_open(9, "x", &Policy::default(), None),
            &native::encode_choke(stream),
        ]);
    });
    let mut client = client(&endpoint);
    match client.call("garbage", b"") {
        Err(ClientError::Protocol(DecodeError::NotAnArray)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(client.call("echo", b"").unwrap(), vec![b"fine".to_vec()]);
    let sid = client.open("s", Policy::default()).unwrap();
    let reply = client.recv(PATIENCE).unwrap().unwrap();
    assert_eq!(
        reply,
        Reply {
            sid,
            kind: ReplyKind::Chunk(b"1".to_vec())
        }
    );
    assert!(matches!(
        client.recv(PATIENCE),
        Err(ClientError::Protocol(DecodeError::UnknownKind(3)))
    ));
    let reply = client.recv(PATIENCE).unwrap().unwrap();
    assert_eq!(
        reply,
        Reply {
            sid,
            kind: ReplyKind::End
        }
    );
    finish(server);
}

#[test]
fn a_bad_endpoint_is_a_zmq_error() {
    assert!(matches!(
        Client::connect("nonsense://"),
        Err(ClientError::Zmq(_))
    ));
}
