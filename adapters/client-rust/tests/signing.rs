//! Signed requests from the client (`Client::sign_as`): a fake node (a ROUTER in a thread)
//! checks each open with the core's own code (the signed bytes, the signature under the
//! user's public key, the body's digest), as a node does. Keys are made by OpenSSL.

#[path = "support/router.rs"]
mod router;

use std::thread;
use std::time::Duration;

use cocaine_client::{Client, Policy, ReplyKind};
use cocaine_core::auth::{body_digest, signature, PublicKey};
use cocaine_core::codec::native::{self, NativeMessage};
use cocaine_keys::{PrivateKey, UserKey};

const PATIENCE: Duration = Duration::from_secs(5);

/// Every message of one multipart from the client, with the signed bytes of an open.
fn receive(socket: &zmq::Socket) -> (Vec<u8>, Vec<(NativeMessage, Option<bytes::Bytes>)>) {
    let mut frames = socket.recv_multipart(0).expect("the client sent nothing");
    let identity = frames.remove(0);
    let messages = frames
        .iter()
        .map(|f| NativeMessage::decode_signed(f, usize::MAX).unwrap())
        .collect();
    (identity, messages)
}

/// Checks one signed request (open, chunks, end in one multipart) and echoes its body.
fn check_and_echo(socket: &zmq::Socket, key: &PublicKey, event: &str, user: &str) {
    let (identity, messages) = receive(socket);
    let mut messages = messages.into_iter();
    let (open, signed) = messages.next().unwrap();
    let NativeMessage::Open {
        sid,
        event: e,
        auth: Some(auth),
        ..
    } = open
    else {
        panic!("not a signed open: {open:?}")
    };
    assert_eq!((e.as_str(), auth.user.as_str()), (event, user));
    assert_eq!(auth.app.as_deref(), Some("echo"));
    assert!(
        signature::verify(key, &signed.unwrap(), &auth.sig),
        "the signature verifies"
    );
    let mut body = Vec::new();
    for (message, _) in messages {
        match message {
            NativeMessage::Chunk { data, .. } => body.extend_from_slice(&data),
            NativeMessage::Choke { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(auth.body.as_deref(), Some(&body_digest([&body[..]])[..]));
    let reply = [native::encode_chunk(sid, &body), native::encode_choke(sid)];
    router::send_to(socket, &identity, &reply);
}

#[test]
fn signed_calls_and_streams_verify_as_the_node_checks_them() {
    let private = PrivateKey::generate(2048).unwrap();
    let public = PublicKey::from_pem(&private.public_pem().unwrap()).unwrap();
    let (socket, endpoint) = router::router(PATIENCE);
    let server = thread::spawn(move || {
        check_and_echo(&socket, &public, "ping", "alice");
        check_and_echo(&socket, &public, "stream", "alice");
        check_and_echo(&socket, &public, "empty", "alice");
    });

    let mut client = Client::connect(&endpoint).unwrap();
    client.set_timeout(PATIENCE).unwrap();
    let user = UserKey {
        user: "alice".into(),
        key: private,
    };
    client.sign_as("echo", Box::new(user)).unwrap();
    assert_eq!(
        client.call("ping", b"hello").unwrap(),
        vec![b"hello".to_vec()]
    );

    // A stream is held by the client until its end, then sent signed in one message.
    let got = router::stream(&mut client, "stream", &[b"one ", b"two"], PATIENCE);
    assert_eq!(got.concat(), b"one two");
    assert_eq!(client.call("empty", b"").unwrap(), vec![Vec::<u8>::new()]);

    // A held stream cancelled before its end never leaves the client; it still ends once.
    let sid = client.open("never", Policy::default()).unwrap();
    client.send(sid, b"x").unwrap();
    client.cancel(sid).unwrap();
    let reply = client.recv(PATIENCE).unwrap().expect("a terminal reply");
    assert_eq!(reply.sid, sid);
    assert!(
        matches!(reply.kind, ReplyKind::Error { code: 499, .. }),
        "{reply:?}"
    );
    server.join().expect("the fake node's checks failed");
}
