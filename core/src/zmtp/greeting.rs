//! The 64-byte greeting both sides send first.

use super::ZmtpError;

pub const GREETING_LEN: usize = 64;

/// What the peer's greeting said that matters after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    pub major: u8,
    pub minor: u8,
}

/// Ours: version 3.1, NULL, not as-server (NULL has no roles).
pub fn ours() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    // Padding as libzmq writes it: a ZMTP 1.0 peer reads `00..01` as a one-byte frame length.
    g[8] = 0x01;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// Checks a peer's greeting as far as `bytes` go (fewer than 64 bytes: only what is there),
/// so that a wrong signature or version fails at once rather than after 64 bytes.
pub fn check_prefix(bytes: &[u8]) -> Result<(), ZmtpError> {
    if bytes.first().is_some_and(|&b| b != 0xFF) || bytes.get(9).is_some_and(|&b| b & 1 == 0) {
        return Err(ZmtpError::BadSignature);
    }
    if let Some(&major) = bytes.get(10) {
        if major < 3 {
            return Err(ZmtpError::OldVersion { major });
        }
    }
    if bytes.len() >= 32 {
        let mechanism = &bytes[12..32];
        let name_len = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
        let (name, rest) = mechanism.split_at(name_len);
        if name != b"NULL" || rest.iter().any(|&b| b != 0) {
            return Err(ZmtpError::Mechanism(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
    }
    Ok(())
}

/// Reads a whole greeting (checked by [`check_prefix`] first).
pub fn parse(bytes: &[u8; GREETING_LEN]) -> Result<Greeting, ZmtpError> {
    check_prefix(bytes)?;
    Ok(Greeting {
        major: bytes[10],
        minor: bytes[11],
    })
}
