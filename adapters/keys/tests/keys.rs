//! Keys made and used by OpenSSL, checked by the core's verifier (the `rsa` crate): the two
//! libraries must agree on every format.

use std::os::unix::fs::PermissionsExt;

use cocaine_core::auth::{
    sign_control, sign_open, Claim, Invoke, KeyStore, PublicKey, ReplayLimits, Signer, Stamp,
    Verifier,
};
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_keys::files::{node_key, read_private, write_pair, LazyNodeKey, NODE_KEY, NODE_PUB};
use cocaine_keys::{KeyError, PrivateKey, UserKey};

fn key() -> PrivateKey {
    PrivateKey::generate(2048).expect("a key")
}

#[test]
fn signatures_verify_with_the_core_and_only_for_their_bytes() {
    let key = key();
    let public = PublicKey::from_pem(&key.public_pem().unwrap()).unwrap();
    assert_eq!(public.bits(), 2048);
    assert_eq!(key.fingerprint().unwrap(), public.fingerprint());
    let sig = key.sign(b"hello").unwrap();
    assert!(cocaine_core::auth::signature::verify(
        &public, b"hello", &sig
    ));
    assert!(!cocaine_core::auth::signature::verify(
        &public, b"hellp", &sig
    ));
    // PSS is randomised: two signatures differ, both verify.
    let again = key.sign(b"hello").unwrap();
    assert_ne!(sig, again);
    assert!(cocaine_core::auth::signature::verify(
        &public, b"hello", &again
    ));
}

#[test]
fn sizes_outside_the_bounds_are_refused() {
    assert!(matches!(
        PrivateKey::generate(1024),
        Err(KeyError::Size { bits: 1024 })
    ));
    assert!(matches!(
        PrivateKey::generate(8192),
        Err(KeyError::Size { bits: 8192 })
    ));
    assert!(matches!(
        PrivateKey::from_pem(b"garbage"),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(
        PrivateKey::from_pem(b""),
        Err(KeyError::Malformed(_))
    ));
    let public = key().public_pem().unwrap();
    assert!(matches!(
        PrivateKey::from_pem(&public),
        Err(KeyError::Malformed(_))
    ));
}

#[test]
fn pairs_are_written_private_0600_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    let (private, public) = write_pair(dir.path(), "alice", &key).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&private), 0o600);
    assert_eq!(mode(&public), 0o644);
    let read = read_private(&private).unwrap();
    assert_eq!(read.public_pem().unwrap(), key.public_pem().unwrap());
    assert!(std::fs::read_to_string(&private)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let again = write_pair(dir.path(), "alice", &key).unwrap_err();
    assert!(again.to_string().contains("exists already"), "{again}");
    // A private key others may read is refused.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = read_private(&private).unwrap_err();
    assert!(open.to_string().contains("chmod 600"), "{open}");
}

#[test]
fn the_node_key_is_made_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = node_key(dir.path()).unwrap();
    assert_eq!(first.bits(), 3072);
    let mode = std::fs::metadata(dir.path().join(NODE_KEY))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read(dir.path().join(NODE_PUB)).unwrap();
    assert_eq!(pem, first.public_pem().unwrap());
    let second = node_key(dir.path()).unwrap();
    assert_eq!(second.public_pem().unwrap(), first.public_pem().unwrap());
    assert!(!dir.path().join("node.key.partial").exists());
}

#[test]
fn the_lazy_node_key_is_made_on_first_need_only_and_then_kept() {
    use cocaine_core::auth::NodeKey as _;
    let dir = tempfile::tempdir().unwrap();
    let lazy = std::sync::Arc::new(LazyNodeKey::new(dir.path()));
    // Nothing is made until something asks.
    assert!(!lazy.is_ready());
    assert!(!dir.path().join(NODE_KEY).exists());
    assert!(!dir.path().join(NODE_PUB).exists());
    // Two threads asking at once get the same pair, made once.
    let (tx, rx) = std::sync::mpsc::channel();
    let warming = lazy
        .warm(move |r| tx.send(r.map(|k| k.public_pem().unwrap())).unwrap())
        .unwrap();
    let pem = lazy.public_pem().unwrap();
    warming.join().unwrap();
    assert_eq!(rx.recv().unwrap().unwrap(), pem.as_bytes());
    assert!(lazy.is_ready());
    assert_eq!(
        std::fs::read(dir.path().join(NODE_PUB)).unwrap(),
        pem.as_bytes()
    );
    // Its signatures verify with the core under the public key it gives.
    let key = PublicKey::from_pem(pem.as_bytes()).unwrap();
    let signature = lazy.sign(b"announcement").unwrap();
    assert!(cocaine_core::auth::signature::verify(
        &key,
        b"announcement",
        &signature
    ));
    assert!(!cocaine_core::auth::signature::verify(
        &key,
        b"announcemenT",
        &signature
    ));
    // Another handle on the same folder reads the same pair.
    let again = LazyNodeKey::new(dir.path());
    assert_eq!(again.public_pem().unwrap(), pem);
    // A folder that cannot hold the pair fails, and says so, every time it is asked.
    let missing = LazyNodeKey::new(&dir.path().join("no-such-folder"));
    assert!(missing.public_pem().is_err());
    assert!(missing.sign(b"x").is_err());
    assert!(!missing.is_ready());
}

fn verifier_for(user: &UserKey) -> Verifier {
    let mut keys = KeyStore::new();
    keys.set_pem(&user.user, &user.key.public_pem().unwrap())
        .unwrap();
    Verifier::new(keys, ReplayLimits::default())
}

#[test]
fn a_signed_control_frame_verifies_at_the_node() {
    let alice = UserKey {
        user: "alice".into(),
        key: key(),
    };
    let stamp = Stamp {
        ts: 1_800_000_000_000,
        nonce: "0123456789abcdef0123".into(),
    };
    let (json, sig) = sign_control(br#"{"version":1,"action":"list"}"#, &stamp, &alice).unwrap();
    let text = std::str::from_utf8(&json).unwrap();
    assert_eq!(
        text,
        r#"{"version":1,"action":"list","nonce":"0123456789abcdef0123","ts":1800000000000,"user":"alice"}"#
    );
    let frames = [bytes::Bytes::from(json), bytes::Bytes::from(sig)];
    let request = cocaine_core::control::ControlRequest::decode(&frames, 1 << 20).unwrap();
    let signed = request.signed.expect("signed");
    let mut v = verifier_for(&alice);
    let claim = Claim {
        user: &signed.user,
        ts: signed.ts,
        nonce: &signed.nonce,
    };
    v.verify(claim, &signed.signed_bytes, &signed.signature, stamp.ts)
        .unwrap();
}

#[test]
fn a_signed_open_verifies_over_its_decoded_signed_part() {
    let alice = UserKey {
        user: "alice".into(),
        key: key(),
    };
    let stamp = Stamp {
        ts: 1_800_000_000_000,
        nonce: "fedcba9876543210fedc".into(),
    };
    let policy = Policy {
        urgent: true,
        timeout_ms: Some(5),
        deadline_ms: None,
        hop: 0,
        sealed: false,
    };
    let invoke = Invoke {
        sid: 7,
        app: "echo",
        event: "ping",
        policy: &policy,
        body: cocaine_core::auth::body_digest([&b"hi"[..]]),
    };
    let frame = sign_open(&invoke, &stamp, &alice).unwrap();
    let (message, signed) = NativeMessage::decode_signed(&frame, 1 << 20).unwrap();
    let NativeMessage::Open {
        auth: Some(auth), ..
    } = message
    else {
        panic!("{message:?}")
    };
    assert_eq!(auth.app.as_deref(), Some("echo"));
    let signed = signed.expect("signed bytes");
    let mut v = verifier_for(&alice);
    let claim = Claim {
        user: "alice",
        ts: stamp.ts,
        nonce: &stamp.nonce,
    };
    v.verify(claim, &signed, &auth.sig, stamp.ts).unwrap();
    assert_eq!(alice.user(), "alice");
}
