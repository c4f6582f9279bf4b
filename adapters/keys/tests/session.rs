//! Session keys between the core and OpenSSL: a grant the core's store seals (the `rsa`
//! crate's RSA-OAEP, a public-key operation) opens with OpenSSL's private-key operation, and
//! the session it gives makes requests the store accepts; another user's key cannot open it.

use std::time::{Instant, SystemTime};

use cocaine_core::auth::session::{ClientSession, KeyUnwrapper, Seed, SessionLimits, SessionStore};
use cocaine_core::auth::PublicKey;
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::time::Now;
use cocaine_keys::{PrivateKey, UserKey};

fn user(name: &str) -> UserKey {
    UserKey {
        user: name.to_owned(),
        key: PrivateKey::generate(2048).unwrap(),
    }
}

#[test]
fn a_grant_sealed_by_the_core_opens_with_openssl_and_its_session_is_accepted() {
    let alice = user("alice");
    let public = PublicKey::from_pem(&alice.key.public_pem().unwrap()).unwrap();
    let mut store = SessionStore::new(SessionLimits::default(), Some(&Seed([1; 32])));
    let now = Now::new(Instant::now(), SystemTime::now());
    let grant = store.open("alice", &public, now).unwrap();
    let mut session = ClientSession::from_grant(&grant, &alice).unwrap();
    for sid in 1..4 {
        let frame = session.open(sid, "echo", "", &Policy::default(), [0; 32]);
        let (message, maced) = NativeMessage::decode_signed(&frame, 1 << 20).unwrap();
        let NativeMessage::OpenInSession { auth, .. } = message else {
            panic!("{message:?}")
        };
        assert_eq!(store.check(&auth, &maced.unwrap(), now).unwrap(), "alice");
    }

    let mallory = user("mallory");
    assert!(mallory.unwrap_key(&grant.wrapped_key).is_err());
    assert!(alice.unwrap_key(&grant.wrapped_key[1..]).is_err());
    let mut tampered = grant.wrapped_key.to_vec();
    tampered[10] ^= 1;
    assert!(alice.unwrap_key(&tampered).is_err());
}
