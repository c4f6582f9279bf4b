//! Signed requests: the key store, the RSA-PSS check, the replay guard and the verifier.
//! Test keys are 2048-bit PEM files made with `openssl genpkey` (core/tests/data/auth/);
//! signatures are made here with the test's private keys (the node never signs).

use std::sync::OnceLock;

use cocaine_core::auth::replay::{check_nonce, MAX_NONCE};
use cocaine_core::auth::{
    AuthError, Claim, KeyError, KeyStore, PublicKey, ReplayGuard, ReplayLimits, Verifier,
};
use proptest::prelude::*;
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::Pss;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

const ALICE_PEM: &[u8] = include_bytes!("data/auth/alice.pem");
const ALICE_KEY: &str = include_str!("data/auth/alice.key");
const BOB_PEM: &[u8] = include_bytes!("data/auth/bob.pem");
const BOB_PKCS1: &[u8] = include_bytes!("data/auth/bob.pkcs1.pem");
const BOB_KEY: &str = include_str!("data/auth/bob.key");
const SMALL_PEM: &[u8] = include_bytes!("data/auth/small.pem");

const NOW: u64 = 1_800_000_000_000;
const NONCE: &str = "0123456789abcdef";

fn private(pem: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
}

fn sign_with(pem: &str, msg: &[u8], salt: usize) -> Vec<u8> {
    let digest = Sha256::digest(msg);
    private(pem)
        .sign_with_rng(
            &mut rsa::rand_core::OsRng,
            Pss::new_with_salt::<Sha256>(salt),
            &digest,
        )
        .unwrap()
}

fn sign(pem: &str, msg: &[u8]) -> Vec<u8> {
    sign_with(pem, msg, 32)
}

/// A control request as a client signs it: the JSON with user, ts and nonce.
fn control_json(user: &str, ts: u64, nonce: &str) -> Vec<u8> {
    format!(r#"{{"version":1,"action":"list","user":"{user}","ts":{ts},"nonce":"{nonce}"}}"#)
        .into_bytes()
}

fn store() -> KeyStore {
    let mut keys = KeyStore::new();
    keys.set_pem("alice", ALICE_PEM).unwrap();
    keys.set_pem("bob", BOB_PEM).unwrap();
    keys
}

fn verifier() -> Verifier {
    Verifier::new(store(), ReplayLimits::default())
}

fn claim(user: &str, ts: u64, nonce: &str) -> Claim<'static> {
    Claim {
        user: Box::leak(user.to_owned().into_boxed_str()),
        ts,
        nonce: Box::leak(nonce.to_owned().into_boxed_str()),
    }
}

/// One signed request made once (signing in a debug build takes a while).
fn signed() -> &'static (Vec<u8>, Vec<u8>) {
    static SIGNED: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let msg = control_json("alice", NOW, NONCE);
        let sig = sign(ALICE_KEY, &msg);
        (msg, sig)
    })
}

// ---- keys ----

#[test]
fn reads_spki_and_pkcs1_pem_and_they_have_the_same_fingerprint() {
    let spki = PublicKey::from_pem(BOB_PEM).unwrap();
    let pkcs1 = PublicKey::from_pem(BOB_PKCS1).unwrap();
    assert_eq!(spki.fingerprint(), pkcs1.fingerprint());
    assert!(spki.fingerprint().starts_with("SHA256:"));
    assert_eq!(spki.bits(), 2048);
    assert_eq!(
        pkcs1.pem().trim(),
        std::str::from_utf8(BOB_PEM).unwrap().trim()
    );
    assert_ne!(
        spki.fingerprint(),
        PublicKey::from_pem(ALICE_PEM).unwrap().fingerprint()
    );
}

#[test]
fn the_fingerprint_is_the_sha256_of_the_der_key() {
    // The base64 body of a SubjectPublicKeyInfo PEM is the DER the fingerprint hashes.
    use base64::Engine as _;
    let text = std::str::from_utf8(ALICE_PEM).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let expected = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(der));
    let key = PublicKey::from_pem(ALICE_PEM).unwrap();
    assert_eq!(key.fingerprint(), format!("SHA256:{expected}"));
}

#[test]
fn refuses_small_keys_private_keys_and_garbage() {
    assert!(matches!(
        PublicKey::from_pem(SMALL_PEM),
        Err(KeyError::Size { bits: 1024, .. })
    ));
    assert!(matches!(
        PublicKey::from_pem(ALICE_KEY.as_bytes()),
        Err(KeyError::Malformed(_))
    ));
    for bad in [
        &b""[..],
        b"hello",
        b"\xff\xfe\x00",
        b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
        &ALICE_PEM[..ALICE_PEM.len() / 2],
    ] {
        assert!(
            matches!(PublicKey::from_pem(bad), Err(KeyError::Malformed(_))),
            "{bad:?}"
        );
    }
    let huge = vec![b'A'; 1 << 20];
    assert!(matches!(
        PublicKey::from_pem(&huge),
        Err(KeyError::Malformed(_))
    ));
}

#[test]
fn user_names_are_file_names() {
    let mut keys = KeyStore::new();
    for bad in [
        "",
        ".hidden",
        "a/b",
        "a b",
        "ü",
        &"x".repeat(65),
        "..",
        "a\0",
    ] {
        assert!(
            matches!(keys.set_pem(bad, ALICE_PEM), Err(KeyError::UserName { .. })),
            "{bad:?}"
        );
    }
    for good in ["a", "alice", "ops-team_2.prod", &"x".repeat(64)] {
        keys.set_pem(good, ALICE_PEM).unwrap();
    }
    assert_eq!(keys.len(), 4);
}

#[test]
fn a_broken_replacement_keeps_the_old_key() {
    let mut keys = store();
    let before = keys.get("alice").unwrap().fingerprint().to_owned();
    assert!(keys.set_pem("alice", b"half a file").is_err());
    assert_eq!(keys.get("alice").unwrap().fingerprint(), before);
    keys.set_pem("alice", BOB_PEM).unwrap();
    assert_ne!(keys.get("alice").unwrap().fingerprint(), before);
    let users: Vec<&str> = keys.iter().map(|(u, _)| u).collect();
    assert_eq!(users, ["alice", "bob"]);
    assert!(keys.remove("alice"));
    assert!(!keys.remove("alice"));
    assert!(keys.get("alice").is_none());
}

// ---- the verifier ----

#[test]
fn accepts_a_valid_request_once() {
    let (msg, sig) = signed();
    let mut v = verifier();
    v.verify(claim("alice", NOW, NONCE), msg, sig, NOW + 5)
        .unwrap();
    assert_eq!(
        v.verify(claim("alice", NOW, NONCE), msg, sig, NOW + 6),
        Err(AuthError::Replayed("alice".into()))
    );
    let stats = v.stats();
    assert_eq!((stats.accepted, stats.replayed, stats.refused()), (1, 1, 1));
}

#[test]
fn accepts_at_the_edges_of_the_window_and_refuses_past_them() {
    let (msg, sig) = signed();
    let window = ReplayLimits::default().window_ms;
    let mut v = verifier();
    assert_eq!(
        v.verify(claim("alice", NOW, NONCE), msg, sig, NOW + window + 1),
        Err(AuthError::Expired {
            age_ms: window + 1,
            window_ms: window
        })
    );
    assert_eq!(
        v.verify(claim("alice", NOW, NONCE), msg, sig, NOW - window - 1),
        Err(AuthError::FutureDated {
            ahead_ms: window + 1,
            window_ms: window
        })
    );
    v.verify(claim("alice", NOW, NONCE), msg, sig, NOW + window)
        .unwrap();
    let mut v = verifier();
    v.verify(claim("alice", NOW, NONCE), msg, sig, NOW - window)
        .unwrap();
    assert_eq!((v.stats().accepted, v.stats().refused()), (1, 0));
}

#[test]
fn refuses_an_unknown_user_and_a_removed_key() {
    let (msg, sig) = signed();
    let mut v = verifier();
    assert_eq!(
        v.verify(claim("carol", NOW, NONCE), msg, sig, NOW),
        Err(AuthError::UnknownUser("carol".into()))
    );
    v.keys_mut().remove("alice");
    assert_eq!(
        v.verify(claim("alice", NOW, NONCE), msg, sig, NOW),
        Err(AuthError::UnknownUser("alice".into()))
    );
    assert_eq!(v.stats().unknown_user, 2);
}

#[test]
fn refuses_another_users_signature_and_a_replaced_key() {
    let (msg, sig) = signed();
    let mut v = verifier();
    // Alice's signature claimed by Bob.
    assert_eq!(
        v.verify(claim("bob", NOW, NONCE), msg, sig, NOW),
        Err(AuthError::BadSignature("bob".into()))
    );
    v.keys_mut().set_pem("alice", BOB_PEM).unwrap();
    assert_eq!(
        v.verify(claim("alice", NOW, NONCE), msg, sig, NOW),
        Err(AuthError::BadSignature("alice".into()))
    );
    // A refused signature burns no nonce: the real request still goes through.
    v.keys_mut().set_pem("alice", ALICE_PEM).unwrap();
    v.verify(claim("alice", NOW, NONCE), msg, sig, NOW).unwrap();
}

#[test]
fn refuses_pkcs1_v15_and_other_salt_lengths() {
    let msg = control_json("bob", NOW, NONCE);
    let digest = Sha256::digest(&msg);
    let v15 = private(BOB_KEY)
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest)
        .unwrap();
    let salt20 = sign_with(BOB_KEY, &msg, 20);
    let mut v = verifier();
    for sig in [
        v15,
        salt20,
        Vec::new(),
        vec![0; 256],
        vec![0xff; 256],
        vec![1; 512],
    ] {
        assert_eq!(
            v.verify(claim("bob", NOW, NONCE), &msg, &sig, NOW),
            Err(AuthError::BadSignature("bob".into()))
        );
    }
}

#[test]
fn refuses_bad_nonces_before_any_key_work() {
    let (msg, sig) = signed();
    let mut v = verifier();
    for nonce in [
        "",
        "short",
        &"n".repeat(MAX_NONCE + 1),
        "0123456789abcde\u{e9}",
        "0123456789 abcdef",
    ] {
        assert!(matches!(
            v.verify(claim("alice", NOW, nonce), msg, sig, NOW),
            Err(AuthError::BadNonce(_))
        ));
    }
    assert_eq!(v.stats().bad_nonce, 5);
    check_nonce(&"n".repeat(MAX_NONCE)).unwrap();
}

#[test]
fn unsigned_is_counted() {
    let mut v = verifier();
    assert_eq!(v.refuse_unsigned(), AuthError::Unsigned);
    assert_eq!(v.stats().unsigned, 1);
    assert_eq!(AuthError::Unsigned.reason(), "unsigned");
}

// ---- the replay guard alone (no signatures needed) ----

fn nonce(i: usize) -> String {
    format!("nonce-{i:010}-pad")
}

#[test]
fn the_cache_forgets_a_nonce_once_its_timestamp_left_the_window() {
    let limits = ReplayLimits {
        window_ms: 1000,
        per_user: 4,
        total: 100,
    };
    let mut g = ReplayGuard::new(limits);
    g.admit("u", NOW, &nonce(0), NOW).unwrap();
    assert_eq!(
        g.admit("u", NOW, &nonce(0), NOW + 1000),
        Err(AuthError::Replayed("u".into()))
    );
    // Now the same request is expired, and its nonce may go.
    assert!(matches!(
        g.admit("u", NOW, &nonce(0), NOW + 1001),
        Err(AuthError::Expired { .. })
    ));
    g.admit("u", NOW + 1001, &nonce(1), NOW + 1001).unwrap();
    assert_eq!(g.len_for("u"), 1);
}

#[test]
fn a_full_cache_refuses_rather_than_forgets() {
    let limits = ReplayLimits {
        window_ms: 1000,
        per_user: 3,
        total: 5,
    };
    let mut g = ReplayGuard::new(limits);
    for i in 0..3 {
        g.admit("u", NOW, &nonce(i), NOW).unwrap();
    }
    assert!(matches!(
        g.admit("u", NOW, &nonce(3), NOW),
        Err(AuthError::TooMany { .. })
    ));
    // The old nonces are still refused as replays.
    assert_eq!(
        g.admit("u", NOW, &nonce(0), NOW),
        Err(AuthError::Replayed("u".into()))
    );
    g.admit("v", NOW, &nonce(0), NOW).unwrap();
    g.admit("v", NOW, &nonce(1), NOW).unwrap();
    assert!(matches!(
        g.admit("w", NOW, &nonce(0), NOW),
        Err(AuthError::TooMany { .. })
    ));
    // Once the window moved on, the room comes back, for everyone.
    g.admit("w", NOW + 1001, &nonce(0), NOW + 1001).unwrap();
    assert_eq!(g.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any change to the signed bytes or the signature is refused, and nothing is remembered.
    #[test]
    fn tampering_with_any_byte_is_refused(
        in_msg in any::<bool>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (msg, sig) = signed();
        let (mut msg, mut sig) = (msg.clone(), sig.clone());
        if in_msg {
            let i = at.index(msg.len());
            msg[i] ^= flip;
        } else {
            let i = at.index(sig.len());
            sig[i] ^= flip;
        }
        let mut v = verifier();
        prop_assert_eq!(
            v.verify(claim("alice", NOW, NONCE), &msg, &sig, NOW),
            Err(AuthError::BadSignature("alice".into()))
        );
        prop_assert!(v.guard().is_empty());
    }

    /// Truncated or extended signatures and messages are refused.
    #[test]
    fn truncated_or_extended_is_refused(cut in 0usize..300, extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let (msg, sig) = signed();
        let mut v = verifier();
        let short_sig = &sig[..cut.min(sig.len() - 1)];
        prop_assert!(v.verify(claim("alice", NOW, NONCE), msg, short_sig, NOW).is_err());
        let long_msg = [msg.as_slice(), &extra].concat();
        prop_assert!(v.verify(claim("alice", NOW, NONCE), &long_msg, sig, NOW).is_err());
        let short_msg = &msg[..cut.min(msg.len() - 1)];
        prop_assert!(v.verify(claim("alice", NOW, NONCE), short_msg, sig, NOW).is_err());
        prop_assert_eq!(v.stats().accepted, 0);
    }

    /// Whatever arrives, in any order and at any time, the cache stays within its bounds,
    /// never admits a nonce twice within the window, and admits a fresh one when there is room.
    #[test]
    fn the_cache_stays_bounded_and_refuses_every_replay(
        events in prop::collection::vec((0usize..3, 0usize..40, 0u64..3000, 0u64..200), 1..400),
    ) {
        let limits = ReplayLimits { window_ms: 500, per_user: 8, total: 16 };
        let mut g = ReplayGuard::new(limits);
        let mut now = NOW;
        let mut admitted: Vec<(usize, usize, u64)> = Vec::new();
        for (user, n, ts_off, step) in events {
            now += step;
            let ts = now + 500 - ts_off.min(1000);
            let user_name = format!("user{user}");
            let result = g.admit(&user_name, ts, &nonce(n), now);
            let replay_in_window = admitted
                .iter()
                .any(|&(u, m, t)| u == user && m == n && now.saturating_sub(t) <= 500);
            if result.is_ok() {
                prop_assert!(!replay_in_window, "admitted a replay");
                admitted.push((user, n, ts));
            } else if let Err(AuthError::Replayed(_)) = result {
                prop_assert!(replay_in_window);
            }
            prop_assert!(g.len() <= limits.total);
            for u in 0..3 {
                let name = format!("user{u}");
                prop_assert!(g.len_for(&name) <= limits.per_user);
            }
        }
    }
}

#[test]
fn the_stated_memory_bound_covers_the_defaults() {
    // The documented figure: 131 072 nonces of at most 64 bytes, about 26 MiB at most.
    let bound = ReplayLimits::default().memory_bound_bytes();
    assert_eq!(bound, 131_072 * (2 * (64 + 8) + 64));
    assert!(bound < 32 << 20);
}

#[test]
fn a_signature_made_by_openssl_verifies() {
    // openssl dgst -sha256 -sign bob.key -sigopt rsa_padding_mode:pss
    //   -sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256
    let msg = include_bytes!("data/auth/openssl.msg");
    let sig = include_bytes!("data/auth/openssl.sig");
    let mut v = verifier();
    let c = claim("bob", NOW, "openssl-interop-01");
    v.verify(c, msg, sig, NOW).unwrap();
}
