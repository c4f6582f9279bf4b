//! Sealed requests from the client (`Client::seal_to`): a fake node (a ROUTER in a thread)
//! opens each sealed body with its OpenSSL key and the core's code, as a node does, and seals
//! the reply for the user; the client hands out the opened reply, for one-shot calls and
//! streams. A reply that does not open is an error, not garbage handed out.

#[path = "support/router.rs"]
mod router;

use std::thread;
use std::time::Duration;

use cocaine_client::{Client, ClientError};
use cocaine_core::auth::seal::{self, Direction};
use cocaine_core::auth::{body_digest, PublicKey};
use cocaine_core::codec::native::{self, NativeMessage};
use cocaine_keys::{OsRandom, PrivateKey, UserKey};

const PATIENCE: Duration = Duration::from_secs(5);

/// How the fake node answers: the reply sealed properly, or one byte of it changed.
#[derive(Clone, Copy)]
enum Answer {
    Upper,
    Tampered,
}

/// Serves `calls` sealed requests: opens each body, answers its upper-case sealed for alice.
fn fake_node(
    node: PrivateKey,
    alice: PublicKey,
    calls: usize,
    answer: Answer,
) -> (String, thread::JoinHandle<()>) {
    let (socket, endpoint) = router::router(PATIENCE);
    let handle = thread::spawn(move || {
        for _ in 0..calls {
            let mut frames = socket.recv_multipart(0).expect("the client sent nothing");
            let identity = frames.remove(0);
            let messages: Vec<NativeMessage> = frames
                .iter()
                .map(|f| NativeMessage::decode(f, usize::MAX).unwrap())
                .collect();
            let [NativeMessage::Open {
                sid,
                policy,
                auth: Some(auth),
                ..
            }, NativeMessage::Chunk { data, .. }, NativeMessage::Choke { .. }] = &messages[..]
            else {
                panic!("not one sealed request: {messages:?}")
            };
            assert!(policy.sealed, "the open says sealed");
            assert_eq!(auth.body.as_deref(), Some(&body_digest([&data[..]])[..]));
            let app = auth.app.clone().unwrap();
            let aad = seal::associated_data(Direction::Request, &auth.user, &app, &auth.nonce);
            let plain = seal::open(data, &aad, &node, &mut OsRandom).expect("the body opens");
            let aad = seal::associated_data(Direction::Reply, &auth.user, &app, &auth.nonce);
            let mut sealed =
                seal::seal(&alice, &plain.to_ascii_uppercase(), &aad, &mut OsRandom).unwrap();
            if let Answer::Tampered = answer {
                *sealed.last_mut().unwrap() ^= 1;
            }
            let reply = [
                native::encode_chunk(*sid, &sealed),
                native::encode_choke(*sid),
            ];
            router::send_to(&socket, &identity, &reply);
        }
    });
    (endpoint, handle)
}

fn keys() -> (PrivateKey, UserKey) {
    let node = PrivateKey::generate(2048).unwrap();
    let alice = UserKey {
        user: "alice".into(),
        key: PrivateKey::generate(2048).unwrap(),
    };
    (node, alice)
}

fn sealed_client(endpoint: &str, node: &PrivateKey, alice: &UserKey) -> Client {
    let mut client = Client::connect(endpoint).unwrap();
    client.set_timeout(PATIENCE).unwrap();
    client.sign_as("echo", Box::new(alice.clone())).unwrap();
    client
        .seal_to(&node.public_pem().unwrap(), Box::new(alice.clone()))
        .unwrap();
    client
}

fn public(key: &PrivateKey) -> PublicKey {
    PublicKey::from_pem(&key.public_pem().unwrap()).unwrap()
}

#[test]
fn a_sealed_call_and_a_sealed_stream_get_their_replies_opened() {
    let (node, alice) = keys();
    let (endpoint, server) = fake_node(node.clone(), public(&alice.key), 2, Answer::Upper);
    let mut client = sealed_client(&endpoint, &node, &alice);
    assert_eq!(
        client.call("upper", b"secret").unwrap(),
        vec![b"SECRET".to_vec()]
    );
    let got = router::stream(&mut client, "upper", &[b"one ", b"two"], PATIENCE);
    assert_eq!(got, vec![b"ONE TWO".to_vec()]);
    server.join().unwrap();
}

#[test]
fn a_reply_that_does_not_open_is_an_error() {
    let (node, alice) = keys();
    let (endpoint, server) = fake_node(node.clone(), public(&alice.key), 1, Answer::Tampered);
    let mut client = sealed_client(&endpoint, &node, &alice);
    match client.call("upper", b"x") {
        Err(ClientError::Seal(why)) => assert!(why.contains("does not open"), "{why}"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn sealing_needs_signing_and_a_public_key() {
    let (node, alice) = keys();
    let mut client = Client::connect("tcp://127.0.0.1:1").unwrap();
    let pem = node.public_pem().unwrap();
    assert!(matches!(
        client.seal_to(&pem, Box::new(alice.clone())),
        Err(ClientError::Seal(_))
    ));
    client.sign_as("echo", Box::new(alice.clone())).unwrap();
    let private = alice.key.private_pem().unwrap();
    assert!(matches!(
        client.seal_to(&private, Box::new(alice.clone())),
        Err(ClientError::Seal(_))
    ));
    assert!(client.seal_to(&pem, Box::new(alice)).is_ok());
}

#[test]
fn sealing_is_not_made_in_a_session() {
    let (node, alice) = keys();
    let mut client = Client::connect("tcp://127.0.0.1:1").unwrap();
    client
        .session_as("echo", std::sync::Arc::new(alice.clone()))
        .unwrap();
    // Sealing is bound to a per-request signature's nonce, which a session's requests lack.
    match client.seal_to(&node.public_pem().unwrap(), Box::new(alice)) {
        Err(ClientError::Seal(why)) => assert!(why.contains("session"), "{why}"),
        other => panic!("{other:?}"),
    }
}
