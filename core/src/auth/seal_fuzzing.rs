//! Checks for the `seal_body` fuzz target and its corpus replay: any bytes as a sealed body,
//! as a node reads it. Nothing may panic; a payload that decodes re-encodes to one that
//! decodes the same; garbage never opens; a payload built from the input opens to what was
//! sealed and stops opening when any byte changes.
//!
//! The core has no private key, so the unwrapping here is a stand-in: the "unwrapped" key is
//! the SHA-256 of the wrapped bytes. It exercises everything after the RSA step (the format,
//! ChaCha20-Poly1305, the associated data); RSA-OAEP itself is OpenSSL's and tested in
//! `cocaine-keys`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use super::seal::{self, Random, SealError, SealedPayload, Unsealer, KEY_LEN, MIN_WRAPPED_LEN};

/// The stand-in unwrapper: SHA-256 of the wrapped bytes.
struct HashUnwrap;

impl Unsealer for HashUnwrap {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
        Ok(Sha256::digest(wrapped).into())
    }
}

/// Implicit rejection never happens with [`HashUnwrap`]; zeros are enough.
struct Zeros;

impl Random for Zeros {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SealError> {
        out.fill(0);
        Ok(())
    }
}

const AAD: &[u8] = b"cocaine-seal/1 request\x00\x05alice\x00\x04echo\x00\x10nonce-0000000001";

/// Any bytes: read as a sealed body and opened, then used to build one that must open.
pub fn check_sealed_body(data: &[u8]) {
    if let Ok(payload) = SealedPayload::decode(data) {
        let again = payload.encode();
        assert_eq!(SealedPayload::decode(&again).as_ref(), Ok(&payload));
        // Opening what nobody sealed fails (forging a Poly1305 tag is what it prevents).
        assert_eq!(
            seal::open(data, AAD, &HashUnwrap, &mut Zeros),
            Err(SealError::NotOpened)
        );
    } else {
        assert!(seal::open(data, AAD, &HashUnwrap, &mut Zeros).is_err());
    }
    round_trip(data);
}

/// A payload sealed from the input (its first 256 bytes as the wrapped key, the next 12 as the
/// nonce, the rest as the body) opens to the body, and not once any byte of it changes.
fn round_trip(data: &[u8]) {
    let mut wrapped = [0u8; MIN_WRAPPED_LEN];
    let take = data.len().min(MIN_WRAPPED_LEN);
    wrapped[..take].copy_from_slice(&data[..take]);
    let rest = &data[take..];
    let mut nonce = [0u8; seal::NONCE_LEN];
    let n = rest.len().min(seal::NONCE_LEN);
    nonce[..n].copy_from_slice(&rest[..n]);
    let body = &rest[n..];
    let key: [u8; KEY_LEN] = Sha256::digest(wrapped).into();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: body,
                aad: AAD,
            },
        )
        .expect("a body of fuzzing size seals");
    let sealed = SealedPayload {
        wrapped_key: &wrapped,
        nonce,
        ciphertext: &ciphertext,
    }
    .encode();
    assert_eq!(
        seal::open(&sealed, AAD, &HashUnwrap, &mut Zeros).as_deref(),
        Ok(body)
    );
    let at = usize::from(data.first().copied().unwrap_or(0)) * 7 % sealed.len();
    let mut changed = sealed.clone();
    changed[at] ^= 0x01;
    assert!(seal::open(&changed, AAD, &HashUnwrap, &mut Zeros).is_err());
    assert!(seal::open(&sealed, b"other", &HashUnwrap, &mut Zeros).is_err());
}
