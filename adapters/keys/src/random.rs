//! Random bytes the core needs but may not draw itself (it reads no random source).

use crate::KeyError;

/// 32 bytes from OpenSSL's random source: the seed a node makes session ids and keys from.
pub fn session_seed() -> Result<cocaine_core::auth::session::Seed, KeyError> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(cocaine_core::auth::session::Seed(bytes))
}
