//! Sealed payloads (docs/security.md, "Sealed bodies"): a body encrypted for one RSA key.
//!
//! `[1, wrapped_key: bin, nonce: bin, ciphertext: bin]` (msgpack): a fresh 32-byte
//! ChaCha20-Poly1305 key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, no label) for the
//! recipient's public key, a 12-byte nonce, and the body sealed with that key and nonce, its
//! 16-byte tag at the end. The associated data names the direction, the user, the app and the
//! signed request's nonce ([`associated_data`]), so a sealed body cannot be replayed under
//! another user's signature, for another app, or as the reply to another request.
//!
//! Wrapping is a public-key operation and happens here with the `rsa` crate; unwrapping
//! needs the private key and is an [`Unsealer`] the adapters implement over OpenSSL (constant
//! time; the `rsa` crate's private-key operations carry RUSTSEC-2023-0071). Keys, nonces and
//! OAEP seeds come from a [`Random`] the caller hands in: the core has no random source.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{CryptoRng, RngCore};
use rsa::Oaep;
use sha2::Sha256;
use thiserror::Error;

use super::keys::PublicKey;
use crate::codec::mp::{self, Reader};

/// The format's version, the payload's first element.
pub const VERSION: u64 = 1;
/// A ChaCha20-Poly1305 key.
pub const KEY_LEN: usize = 32;
/// A ChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 12;
/// The Poly1305 tag that ends the ciphertext.
pub const TAG_LEN: usize = 16;
/// The longest wrapped key: one RSA block of the largest key accepted (4096 bits).
pub const MAX_WRAPPED_LEN: usize = super::keys::MAX_KEY_BITS / 8;
/// The shortest wrapped key: one block of the smallest key accepted (2048 bits).
pub const MIN_WRAPPED_LEN: usize = super::keys::MIN_KEY_BITS / 8;

/// Why a payload was not sealed or not opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// The bytes are not `[1, bin, bin, bin]` with fields of the right sizes.
    #[error("not a sealed payload: {0}")]
    Malformed(String),
    /// A version this code does not read.
    #[error("a sealed payload of version {0}; version 1 is read")]
    Version(u64),
    /// The key did not unwrap or the tag did not verify: one answer for both, so the reply
    /// tells an attacker nothing about which step failed.
    #[error("the sealed body does not open: sealed for another key, or changed on the way")]
    NotOpened,
    /// Sealing failed (the recipient's key refused the wrap).
    #[error("sealing failed: {0}")]
    Seal(String),
    /// The random source failed.
    #[error("no random bytes: {0}")]
    Random(String),
}

/// The private half of an RSA key, able to unwrap an RSA-OAEP (SHA-256, MGF1-SHA-256)
/// wrapped key. The node's own key does this for sealed requests, a user's key for sealed
/// replies; `cocaine-keys` implements it over OpenSSL, never with the `rsa` crate.
pub trait Unsealer: Send + Sync {
    /// The unwrapped key, or an error when `wrapped` does not decrypt to 32 bytes.
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError>;
}

/// A cryptographically secure random source (keys, nonces, OAEP seeds).
pub trait Random: Send {
    /// Fills `out`.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SealError>;
}

/// Which way a sealed payload goes: part of its associated data, so a request's sealed body
/// can never pass for a reply or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Reply,
}

/// The associated data a sealed body is bound to: `cocaine-seal/1 request` (or `reply`),
/// then the user, the app and the signed open's nonce, each as a 2-byte big-endian length and
/// its bytes.
pub fn associated_data(direction: Direction, user: &str, app: &str, nonce: &[u8]) -> Vec<u8> {
    let label: &[u8] = match direction {
        Direction::Request => b"cocaine-seal/1 request",
        Direction::Reply => b"cocaine-seal/1 reply",
    };
    let mut out = Vec::with_capacity(label.len() + 6 + user.len() + app.len() + nonce.len());
    out.extend_from_slice(label);
    for field in [user.as_bytes(), app.as_bytes(), nonce] {
        // Every field is far shorter than 64 KiB (user names 64 bytes, nonces 64, app names
        // bounded by the manifest); a longer one is cut in the length, never ambiguous.
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&field[..usize::from(len)]);
    }
    out
}

/// A sealed payload read from its bytes, borrowing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPayload<'a> {
    pub wrapped_key: &'a [u8],
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted body and its tag.
    pub ciphertext: &'a [u8],
}

impl<'a> SealedPayload<'a> {
    /// Reads `[1, wrapped_key, nonce, ciphertext]`: all three binaries, the wrapped key one
    /// RSA block (256 to 512 bytes), the nonce 12 bytes, the ciphertext at least a tag; no
    /// trailing bytes. Never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<SealedPayload<'a>, SealError> {
        let malformed = |e: crate::codec::DecodeError| SealError::Malformed(e.to_string());
        let head = Reader::message(bytes).map_err(malformed)?;
        if head.kind != VERSION {
            return Err(SealError::Version(head.kind));
        }
        if head.arity != 4 {
            return Err(SealError::Malformed(format!(
                "{} elements, expected 4",
                head.arity
            )));
        }
        let mut r = head.body;
        let wrapped_key = r.bin("wrapped_key").map_err(malformed)?;
        let nonce = r.bin("nonce").map_err(malformed)?;
        let ciphertext = r.bin("ciphertext").map_err(malformed)?;
        r.finish().map_err(malformed)?;
        if !(MIN_WRAPPED_LEN..=MAX_WRAPPED_LEN).contains(&wrapped_key.len()) {
            return Err(SealError::Malformed(format!(
                "a wrapped key of {} bytes, expected {MIN_WRAPPED_LEN} to {MAX_WRAPPED_LEN}",
                wrapped_key.len()
            )));
        }
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| {
            SealError::Malformed(format!(
                "a nonce of {} bytes, expected {NONCE_LEN}",
                nonce.len()
            ))
        })?;
        if ciphertext.len() < TAG_LEN {
            return Err(SealError::Malformed(format!(
                "a ciphertext of {} bytes, shorter than its {TAG_LEN}-byte tag",
                ciphertext.len()
            )));
        }
        Ok(SealedPayload {
            wrapped_key,
            nonce,
            ciphertext,
        })
    }

    /// The payload's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = bytes::BytesMut::with_capacity(
            16 + self.wrapped_key.len() + NONCE_LEN + self.ciphertext.len(),
        );
        mp::put_array_len(&mut out, 4);
        mp::put_uint(&mut out, VERSION);
        mp::put_bin(&mut out, self.wrapped_key);
        mp::put_bin(&mut out, &self.nonce);
        mp::put_bin(&mut out, self.ciphertext);
        out.to_vec()
    }
}

/// The bytes a sealed payload adds to its body: the wrapped key for `key_bits`, the nonce,
/// the tag and msgpack headers.
pub fn overhead(key_bits: usize) -> usize {
    key_bits / 8 + NONCE_LEN + TAG_LEN + 16
}

/// Seals `plaintext` for `recipient`: a fresh key and nonce from `random`, the key wrapped
/// with RSA-OAEP (a public-key operation), the body with ChaCha20-Poly1305 over `aad`.
pub fn seal(
    recipient: &PublicKey,
    plaintext: &[u8],
    aad: &[u8],
    random: &mut dyn Random,
) -> Result<Vec<u8>, SealError> {
    let mut key = [0u8; KEY_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    random.fill(&mut key)?;
    random.fill(&mut nonce)?;
    let mut rng = RandomRng {
        random,
        failed: None,
    };
    let wrapped = recipient
        .rsa()
        .encrypt(&mut rng, Oaep::new::<Sha256>(), &key)
        .map_err(|e| SealError::Seal(e.to_string()));
    if let Some(error) = rng.failed {
        return Err(error);
    }
    let wrapped = wrapped?;
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError::Seal("the body is too long for ChaCha20-Poly1305".into()))?;
    key.fill(0);
    Ok(SealedPayload {
        wrapped_key: &wrapped,
        nonce,
        ciphertext: &ciphertext,
    }
    .encode())
}

/// Opens a sealed payload with `unsealer`'s private key, checking it against `aad`.
///
/// When the key does not unwrap, a random key takes its place and decryption goes on (and
/// fails at the tag): the failure looks and costs the same whichever step failed, so a caller
/// timing the node learns nothing about the RSA-OAEP step ("implicit rejection").
pub fn open(
    sealed: &[u8],
    aad: &[u8],
    unsealer: &dyn Unsealer,
    random: &mut dyn Random,
) -> Result<Vec<u8>, SealError> {
    let payload = SealedPayload::decode(sealed)?;
    let mut key = match unsealer.unwrap_key(payload.wrapped_key) {
        Ok(key) => key,
        Err(_) => {
            let mut key = [0u8; KEY_LEN];
            random.fill(&mut key)?;
            key
        }
    };
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    key.fill(0);
    cipher
        .decrypt(
            Nonce::from_slice(&payload.nonce),
            Payload {
                msg: payload.ciphertext,
                aad,
            },
        )
        .map_err(|_| SealError::NotOpened)
}

/// The `rsa` crate draws its OAEP seed from a `rand_core` generator; this one reads the
/// caller's [`Random`] and keeps its first failure.
struct RandomRng<'a> {
    random: &'a mut dyn Random,
    failed: Option<SealError>,
}

impl RngCore for RandomRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Err(e) = self.random.fill(dest) {
            self.failed.get_or_insert(e);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// The seeds come from the caller's cryptographically secure source.
impl CryptoRng for RandomRng<'_> {}

/// A [`Random`] over a fixed byte stream, for tests and fuzzing only: never for real keys.
#[cfg(any(test, feature = "sim"))]
#[derive(Debug, Clone)]
pub struct TestRandom {
    state: u64,
}

#[cfg(any(test, feature = "sim"))]
impl TestRandom {
    pub fn new(seed: u64) -> TestRandom {
        TestRandom { state: seed }
    }
}

#[cfg(any(test, feature = "sim"))]
impl Random for TestRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SealError> {
        for byte in out {
            // splitmix64: distinct, well-spread bytes; deterministic on purpose.
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *byte = (z ^ (z >> 31)) as u8;
        }
        Ok(())
    }
}
