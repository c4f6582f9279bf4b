//! Opening sealed payloads (docs/security.md, "Sealed bodies"): the RSA-OAEP unwrap of a
//! sealed payload's key with a private key, over OpenSSL, whose RSA private-key operations are
//! blinded and whose OAEP decoding is constant time. The core does the rest (the format,
//! ChaCha20-Poly1305) around the [`Unsealer`] here; it never holds a private key.
//!
//! The node's own key opens sealed requests; a user's key opens sealed replies. [`OsRandom`]
//! is the random source both hand to the core for fresh keys, nonces and OAEP seeds.

use cocaine_core::auth::seal::{Random, SealError, Unsealer, KEY_LEN};
use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::rsa::Padding;

use super::{PrivateKey, UserKey};

impl PrivateKey {
    /// Unwraps an RSA-OAEP (SHA-256, MGF1-SHA-256, no label) wrapped 32-byte key.
    pub fn unwrap_oaep(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
        // One message for every failure: which step of the OAEP decoding failed is exactly
        // what must not leak.
        let refused = |_| SealError::NotOpened;
        let mut decrypter = Decrypter::new(&self.pkey).map_err(refused)?;
        decrypter
            .set_rsa_padding(Padding::PKCS1_OAEP)
            .map_err(refused)?;
        decrypter
            .set_rsa_oaep_md(MessageDigest::sha256())
            .map_err(refused)?;
        decrypter
            .set_rsa_mgf1_md(MessageDigest::sha256())
            .map_err(refused)?;
        let mut out = vec![0u8; decrypter.decrypt_len(wrapped).map_err(refused)?];
        let len = decrypter.decrypt(wrapped, &mut out).map_err(refused)?;
        let key = <[u8; KEY_LEN]>::try_from(&out[..len]).map_err(|_| SealError::NotOpened);
        out.fill(0);
        key
    }
}

impl Unsealer for PrivateKey {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
        self.unwrap_oaep(wrapped)
    }
}

impl Unsealer for crate::files::LazyNodeKey {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
        // A pair that cannot be read or made opens nothing; the reply says the body did not
        // open, as for any other key that does not fit.
        self.get()
            .map_err(|_| SealError::NotOpened)?
            .unwrap_oaep(wrapped)
    }
}

impl Unsealer for UserKey {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
        self.key.unwrap_oaep(wrapped)
    }
}

/// OpenSSL's random source (seeded by the operating system).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SealError> {
        openssl::rand::rand_bytes(out).map_err(|e| SealError::Random(e.to_string()))
    }
}
