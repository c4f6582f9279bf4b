//! The signature check: RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, over the exact
//! bytes of the signed frame. Public-key operations only.

use rsa::pss::Pss;
use sha2::{Digest, Sha256};

use super::keys::PublicKey;

/// The salt length every signature must use, in bytes (the SHA-256 output size).
pub const SALT_LEN: usize = 32;

/// True when `signature` is a valid RSA-PSS/SHA-256 signature of `message` under `key`.
/// A signature of the wrong length is simply invalid.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let digest = Sha256::digest(message);
    key.rsa()
        .verify(Pss::new_with_salt::<Sha256>(SALT_LEN), &digest, signature)
        .is_ok()
}
