//! Public keys and the key store. The store is plain data: the runtime reads `<user>.pem`
//! files from the key folder and hands the bytes in; the core parses them here.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};

use super::error::KeyError;

/// The smallest modulus we accept, in bits.
pub const MIN_KEY_BITS: usize = 2048;
/// The largest modulus we accept, in bits (the most the `rsa` crate checks).
pub const MAX_KEY_BITS: usize = 4096;
/// The longest user name, in bytes.
pub const MAX_USER_NAME: usize = 64;
/// The largest PEM text we parse, in bytes: a 4096-bit key is under 1 KiB.
pub const MAX_PEM_BYTES: usize = 16 * 1024;

/// An RSA public key with its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    rsa: RsaPublicKey,
    fingerprint: String,
    pem: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} bits, {})", self.bits(), self.fingerprint)
    }
}

impl PublicKey {
    /// Reads one PEM block: `PUBLIC KEY` (SubjectPublicKeyInfo, what `openssl pkey -pubout`
    /// and `cocaine keygen` write) or `RSA PUBLIC KEY` (PKCS#1). Never panics.
    pub fn from_pem(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        if bytes.len() > MAX_PEM_BYTES {
            return Err(KeyError::Malformed(format!(
                "{} bytes, over the limit of {MAX_PEM_BYTES}",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| KeyError::Malformed("not UTF-8 text".into()))?
            .trim();
        let rsa = if text.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            RsaPublicKey::from_pkcs1_pem(text).map_err(|e| KeyError::Malformed(e.to_string()))?
        } else {
            RsaPublicKey::from_public_key_pem(text)
                .map_err(|e| KeyError::Malformed(e.to_string()))?
        };
        Self::from_rsa(rsa)
    }

    fn from_rsa(rsa: RsaPublicKey) -> Result<PublicKey, KeyError> {
        let bits = rsa.n().bits();
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(KeyError::Size {
                bits,
                min: MIN_KEY_BITS,
                max: MAX_KEY_BITS,
            });
        }
        let der = rsa
            .to_public_key_der()
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let pem = rsa
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(PublicKey {
            fingerprint: fingerprint(der.as_bytes()),
            rsa,
            pem,
        })
    }

    /// `SHA256:` and the unpadded base64 of the SHA-256 of the key's SubjectPublicKeyInfo DER,
    /// the same as `openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The modulus size.
    pub fn bits(&self) -> usize {
        self.rsa.n().bits()
    }

    /// The key as a `PUBLIC KEY` PEM block, whatever form it was read from.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub(crate) fn rsa(&self) -> &RsaPublicKey {
        &self.rsa
    }
}

fn fingerprint(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// Checks a user name: 1 to [`MAX_USER_NAME`] bytes of `A-Z a-z 0-9 . _ -`, not starting with
/// `.` (names are key file names, `<user>.pem`).
pub fn check_user_name(name: &str) -> Result<(), KeyError> {
    let bad = |why| {
        Err(KeyError::UserName {
            name: name.chars().take(MAX_USER_NAME).collect(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_USER_NAME {
        return bad("longer than 64 bytes");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("use A-Z, a-z, 0-9, '.', '_' and '-'");
    }
    Ok(())
}

/// Who may sign: user name → public key. The runtime keeps it in step with the key folder
/// through [`KeyStore::set_pem`] and [`KeyStore::remove`].
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    keys: BTreeMap<String, PublicKey>,
}

impl KeyStore {
    /// An empty store: every signed request is from an unknown user.
    pub fn new() -> KeyStore {
        KeyStore::default()
    }

    /// Adds or replaces `user`'s key from PEM bytes. On error the store is unchanged, so a
    /// half-written or broken file never removes a working key.
    pub fn set_pem(&mut self, user: &str, pem: &[u8]) -> Result<&PublicKey, KeyError> {
        check_user_name(user)?;
        let key = PublicKey::from_pem(pem)?;
        self.keys.insert(user.to_owned(), key);
        Ok(&self.keys[user])
    }

    /// Adds or replaces `user`'s key.
    pub fn insert(&mut self, user: &str, key: PublicKey) -> Result<(), KeyError> {
        check_user_name(user)?;
        self.keys.insert(user.to_owned(), key);
        Ok(())
    }

    /// Forgets `user`'s key; true if there was one. Requests signed by `user` fail from now on.
    pub fn remove(&mut self, user: &str) -> bool {
        self.keys.remove(user).is_some()
    }

    /// `user`'s key, if any.
    pub fn get(&self, user: &str) -> Option<&PublicKey> {
        self.keys.get(user)
    }

    /// Every user and key, sorted by user name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PublicKey)> {
        self.keys.iter().map(|(u, k)| (u.as_str(), k))
    }

    /// How many users have a key.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no user has a key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
