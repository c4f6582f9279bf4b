//! Private-key work for Cocaine: generating RSA key pairs, reading and writing key files, and
//! signing requests with RSA-PSS/SHA-256. Everything that touches a private key lives here,
//! over the system's OpenSSL, whose RSA private-key operations are blinded and constant time.
//! The core's `rsa` crate does public-key work only: its private-key operations carry the
//! timing advisory RUSTSEC-2023-0071 (docs/security.md).
//!
//! - [`PrivateKey`]: a key pair, made or read from PEM; [`PrivateKey::sign`] is the
//!   signature every signed request (and, later, announcement) carries. It implements the
//!   core's [`Signer`] through [`UserKey`].
//! - [`unwrap`]: opening a session key the node sealed to the user's public key (RSA-OAEP).
//! - [`unseal`]: the RSA-OAEP unwrap that opens sealed payloads (the core's `Unsealer`), and
//!   [`OsRandom`], the random source sealing draws on.
//! - [`files`]: `NAME.key` (mode 0600) and `NAME.pem`, and the node's own key pair in its
//!   state folder.

pub mod files;
pub mod random;
pub mod unseal;
pub mod unwrap;

pub use unseal::OsRandom;

use cocaine_core::auth::{SignError, Signer};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer as OpensslSigner};
use thiserror::Error;

/// The key size `cocaine keygen` writes by default.
pub const DEFAULT_BITS: u32 = 3072;
/// The sizes a node accepts (the core's key store's bounds).
pub const MIN_BITS: u32 = cocaine_core::auth::keys::MIN_KEY_BITS as u32;
pub const MAX_BITS: u32 = cocaine_core::auth::keys::MAX_KEY_BITS as u32;
/// The PSS salt length, in bytes: the SHA-256 output size, as the node requires.
const SALT_LEN: i32 = cocaine_core::auth::signature::SALT_LEN as i32;

/// What went wrong with a key.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("an RSA key of {bits} bits; keys must have {MIN_BITS} to {MAX_BITS} bits")]
    Size { bits: u32 },
    #[error("not an RSA private key in PEM: {0}")]
    Malformed(String),
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// An RSA key pair held by OpenSSL (a clone shares it).
#[derive(Clone)]
pub struct PrivateKey {
    pkey: PKey<Private>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({} bits)", self.bits())
    }
}

impl PrivateKey {
    /// A new key pair of `bits` bits (public exponent 65537), from OpenSSL's random source.
    pub fn generate(bits: u32) -> Result<PrivateKey, KeyError> {
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(KeyError::Size { bits });
        }
        let rsa = Rsa::generate(bits)?;
        Ok(PrivateKey {
            pkey: PKey::from_rsa(rsa)?,
        })
    }

    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`, what `cocaine keygen` and `openssl
    /// genpkey` write) or PKCS#1 (`RSA PRIVATE KEY`). Encrypted keys are refused.
    pub fn from_pem(pem: &[u8]) -> Result<PrivateKey, KeyError> {
        let pkey = PKey::private_key_from_pem_callback(pem, |_| Ok(0))
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let rsa = pkey
            .rsa()
            .map_err(|_| KeyError::Malformed("not an RSA key".into()))?;
        let bits = rsa.size() * 8;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(KeyError::Size { bits });
        }
        if !rsa.check_key()? {
            return Err(KeyError::Malformed("the key does not check out".into()));
        }
        Ok(PrivateKey { pkey })
    }

    /// The modulus size.
    pub fn bits(&self) -> u32 {
        self.pkey.bits()
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), unencrypted.
    pub fn private_pem(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.pkey.private_key_to_pem_pkcs8()?)
    }

    /// The public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), what goes
    /// in a node's key folder as `<user>.pem`.
    pub fn public_pem(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.pkey.public_key_to_pem()?)
    }

    /// The public key's fingerprint, as the node shows it (`SHA256:...`).
    pub fn fingerprint(&self) -> Result<String, KeyError> {
        let key = cocaine_core::auth::PublicKey::from_pem(&self.public_pem()?)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(key.fingerprint().to_owned())
    }

    /// An RSA-PSS signature of `message`: SHA-256, MGF1-SHA-256, a 32-byte salt.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signer = OpensslSigner::new(MessageDigest::sha256(), &self.pkey)?;
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(SALT_LEN))?;
        signer.update(message)?;
        Ok(signer.sign_to_vec()?)
    }
}

/// A user name with their private key: what signs a client's requests.
#[derive(Debug, Clone)]
pub struct UserKey {
    pub user: String,
    pub key: PrivateKey,
}

impl UserKey {
    /// `user`'s key read from the PEM file at `path`.
    pub fn read(user: &str, path: &std::path::Path) -> Result<UserKey, KeyError> {
        cocaine_core::auth::check_user_name(user).map_err(|e| KeyError::Refused(e.to_string()))?;
        Ok(UserKey {
            user: user.to_owned(),
            key: files::read_private(path)?,
        })
    }
}

impl Signer for UserKey {
    fn user(&self) -> &str {
        &self.user
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.key.sign(message).map_err(|e| SignError(e.to_string()))
    }
}

/// A fresh nonce: 32 hex digits from OpenSSL's random source.
pub fn nonce() -> Result<String, KeyError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A stamp for a request signed now: the wall clock and a fresh nonce.
pub fn stamp() -> Result<cocaine_core::auth::Stamp, KeyError> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(cocaine_core::auth::Stamp {
        ts,
        nonce: nonce()?,
    })
}
