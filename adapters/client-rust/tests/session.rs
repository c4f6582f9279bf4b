//! `Client::session_as` against an in-test ROUTER that answers as a node does, with the
//! core's session store: the session is opened by one signed request and used by the calls
//! after it (the store accepts their MACs), a stream goes in the session at its end, and a
//! call refused because the node forgot the session is retried once in a new one.

#[path = "support/router.rs"]
mod router;

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cocaine_client::{Client, ClientError, Policy, ReplyKind};
use cocaine_core::auth::session::{Seed, SessionLimits, SessionStore, SESSION_EVENT};
use cocaine_core::auth::{signature, PublicKey};
use cocaine_core::codec::native::{self, NativeMessage};
use cocaine_core::codec::native_session::encode_grant;
use cocaine_core::time::Now;
use cocaine_keys::{PrivateKey, UserKey};

const PATIENCE: Duration = Duration::from_secs(5);

/// What the in-test node does with each request in a session, in order.
#[derive(Clone, Copy)]
enum Answer {
    Echo,
    Forget,
}

/// A ROUTER that opens sessions for `public` and answers requests in them by `script`; returns
/// the endpoint and a handle giving (sessions opened, requests accepted).
fn node(public: PublicKey, script: Vec<Answer>) -> (String, JoinHandle<(u64, u64)>) {
    let (socket, endpoint) = router::router(PATIENCE);
    let handle = thread::spawn(move || {
        let mut store = SessionStore::new(SessionLimits::default(), Some(&Seed([2; 32])));
        let mut script = script.into_iter();
        while script.len() > 0 {
            let frames = socket.recv_multipart(0).expect("the client went quiet");
            let identity = frames[0].clone();
            let (open, maced) = NativeMessage::decode_signed(&frames[1], usize::MAX).unwrap();
            let now = Now::new(Instant::now(), SystemTime::now());
            let reply: Vec<Bytes> = match open {
                NativeMessage::Open {
                    sid,
                    event,
                    auth: Some(auth),
                    ..
                } if event == SESSION_EVENT => {
                    assert!(signature::verify(&public, &maced.unwrap(), &auth.sig));
                    let grant = store.open("alice", &public, now).unwrap();
                    vec![
                        native::encode_chunk(sid, &encode_grant(&grant)),
                        native::encode_choke(sid),
                    ]
                }
                NativeMessage::OpenInSession { sid, auth, .. } => {
                    let body: Vec<u8> = (frames[2..].iter())
                        .filter_map(|f| match NativeMessage::decode(f, usize::MAX).unwrap() {
                            NativeMessage::Chunk { data, .. } => Some(data.to_vec()),
                            _ => None,
                        })
                        .flatten()
                        .collect();
                    assert_eq!(
                        &auth.body[..],
                        &cocaine_core::auth::body_digest([&body[..]])[..]
                    );
                    match script.next().unwrap() {
                        Answer::Echo => {
                            assert_eq!(store.check(&auth, &maced.unwrap(), now).unwrap(), "alice");
                            vec![native::encode_chunk(sid, &body), native::encode_choke(sid)]
                        }
                        Answer::Forget => {
                            store.drop_user("alice");
                            vec![native::encode_error(sid, 401, "unknown session")]
                        }
                    }
                }
                other => panic!("unexpected {other:?}"),
            };
            for message in reply {
                socket
                    .send_multipart([identity.clone(), message.to_vec()], 0)
                    .unwrap();
            }
        }
        (store.stats().opened, store.stats().accepted)
    });
    (endpoint, handle)
}

fn alice() -> (Arc<UserKey>, PublicKey) {
    let key = PrivateKey::generate(2048).unwrap();
    let public = PublicKey::from_pem(&key.public_pem().unwrap()).unwrap();
    let user = UserKey {
        user: "alice".into(),
        key,
    };
    (Arc::new(user), public)
}

#[test]
fn one_signature_opens_a_session_for_many_calls_and_a_stream() {
    let (user, public) = alice();
    let (endpoint, node) = node(public, vec![Answer::Echo; 6]);
    let mut client = Client::connect(&endpoint).unwrap();
    client.set_timeout(PATIENCE).unwrap();
    client.session_as("echo", user).unwrap();
    for i in 0..5 {
        let body = format!("call {i}");
        assert_eq!(
            client.call("", body.as_bytes()).unwrap(),
            vec![body.into_bytes()]
        );
    }
    let sid = client.open("", Policy::default()).unwrap();
    client.send(sid, b"str").unwrap();
    client.send(sid, b"eam").unwrap();
    client.end(sid).unwrap();
    let reply = client.recv(PATIENCE).unwrap().unwrap();
    assert_eq!(reply.kind, ReplyKind::Chunk(b"stream".to_vec()));
    assert_eq!(node.join().unwrap(), (1, 6));
}

#[test]
fn a_forgotten_session_is_reopened_and_the_call_retried_once() {
    let (user, public) = alice();
    let script = vec![
        Answer::Echo,
        Answer::Forget,
        Answer::Echo,
        Answer::Forget,
        Answer::Forget,
    ];
    let (endpoint, node) = node(public, script);
    let mut client = Client::connect(&endpoint).unwrap();
    client.set_timeout(PATIENCE).unwrap();
    client.session_as("echo", user).unwrap();
    assert_eq!(client.call("", b"a").unwrap(), vec![b"a".to_vec()]);
    // Forgotten: reopened, retried, served.
    assert_eq!(client.call("", b"b").unwrap(), vec![b"b".to_vec()]);
    // Forgotten twice in a row: the second refusal is the caller's.
    match client.call("", b"c") {
        Err(ClientError::Remote { code: 401, message }) => assert_eq!(message, "unknown session"),
        other => panic!("{other:?}"),
    }
    assert_eq!(node.join().unwrap(), (3, 2));
}
