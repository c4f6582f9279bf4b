//! Checks for the `auth_key` fuzz target and its corpus replay: any bytes as a PEM public
//! key, or as a message and signature under a fixed key. Nothing may panic; a key that is read
//! must round-trip with the same fingerprint; garbage must never verify.

use super::keys::{PublicKey, MAX_KEY_BITS, MIN_KEY_BITS};
use super::signature;

const FIXED_KEY: &[u8] = include_bytes!("../../tests/data/auth/alice.pem");

/// The first byte picks the check: even reads the rest as a PEM key, odd splits the rest at
/// its second byte into a message and a signature and verifies them under a fixed key.
pub fn check_auth_input(data: &[u8]) {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => check_public_key_pem(rest),
        Some((_, rest)) => check_signature(rest),
        None => {}
    }
}

/// Any bytes as a PEM key: an error, or a key of an accepted size that reads back the same.
pub fn check_public_key_pem(data: &[u8]) {
    if let Ok(key) = PublicKey::from_pem(data) {
        assert!((MIN_KEY_BITS..=MAX_KEY_BITS).contains(&key.bits()));
        assert!(key.fingerprint().starts_with("SHA256:"));
        let again = PublicKey::from_pem(key.pem().as_bytes()).expect("a key's own PEM reads");
        assert_eq!(again.fingerprint(), key.fingerprint());
    }
}

/// Any bytes as a message and a signature under a fixed key: never valid (forging one is the
/// thing RSA-PSS prevents), never a panic.
pub fn check_signature(data: &[u8]) {
    let key = PublicKey::from_pem(FIXED_KEY).expect("the fixed key reads");
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (message, signature) = data.split_at(split);
    assert!(!signature::verify(&key, message, signature));
}

/// Any bytes as a native-protocol frame, read as a node reads a signed open: no panic; the
/// signed bytes of an open with `auth` are the frame without `auth.sig` (shorter, and not
/// themselves a signed open); for a frame in our own encoding they are exactly what a client
/// signs; and a signature that verifies stops verifying when one of its bytes changes.
pub fn check_signed_open(data: &[u8]) {
    use crate::codec::native::{self, NativeMessage};
    use crate::codec::DecodeError;

    let Ok((message, signed)) = NativeMessage::decode_signed(data, 1 << 20) else {
        return;
    };
    let NativeMessage::Open {
        sid,
        event,
        policy,
        auth: Some(auth),
    } = message
    else {
        assert!(signed.is_none(), "signed bytes without an auth map");
        return;
    };
    let signed = signed.expect("a signed open has signed bytes");
    assert!(signed.len() < data.len());
    assert_eq!(
        NativeMessage::decode(&signed, 1 << 20),
        Err(DecodeError::MissingKey {
            map: "auth",
            key: "sig"
        })
    );
    if native::encode_open(sid, &event, &policy, Some(&auth))[..] == *data {
        assert_eq!(
            native::encode_open_signed_part(sid, &event, &policy, &auth),
            signed
        );
    }
    let key = PublicKey::from_pem(FIXED_KEY).expect("the fixed key reads");
    if !auth.sig.is_empty() && signature::verify(&key, &signed, &auth.sig) {
        let mut sig = auth.sig.to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert!(!signature::verify(&key, &signed, &sig));
    }
}
