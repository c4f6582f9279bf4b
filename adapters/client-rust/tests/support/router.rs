//! What the client's tests share: a ROUTER on a free loopback port standing in for a node,
//! replies sent back to one client, and a stream sent whole and read to its end.
//!
//! Include it with `#[path = "support/router.rs"] mod router;`.

#![allow(dead_code)]

use std::time::Duration;

use cocaine_client::{Client, Policy, ReplyKind};

/// A ROUTER bound on a free loopback port that waits at most `patience` for a message, and
/// the endpoint to connect to.
pub fn router(patience: Duration) -> (zmq::Socket, String) {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::ROUTER).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(patience.as_millis() as i32).unwrap();
    socket.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = socket.get_last_endpoint().unwrap().unwrap();
    (socket, endpoint)
}

/// Sends `reply` to the client `identity` as one multipart message.
pub fn send_to(socket: &zmq::Socket, identity: &[u8], reply: &[bytes::Bytes]) {
    let frames: Vec<&[u8]> = [identity]
        .into_iter()
        .chain(reply.iter().map(|f| &f[..]))
        .collect();
    socket.send_multipart(frames, 0).unwrap();
}

/// Opens a stream of `event`, sends `parts` and its end, and returns the chunks of its reply
/// up to the end; any other reply fails the test.
pub fn stream(
    client: &mut Client,
    event: &str,
    parts: &[&[u8]],
    patience: Duration,
) -> Vec<Vec<u8>> {
    let sid = client.open(event, Policy::default()).unwrap();
    for part in parts {
        client.send(sid, part).unwrap();
    }
    client.end(sid).unwrap();
    let mut got = Vec::new();
    while let Some(reply) = client.recv(patience).unwrap() {
        match reply.kind {
            ReplyKind::Chunk(data) => got.push(data),
            ReplyKind::End => break,
            other => panic!("{other:?}"),
        }
    }
    got
}
