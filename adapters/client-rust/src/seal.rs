//! Sealed requests (docs/security.md, "Sealed bodies"): the body is sealed for the node's
//! public key (RSA-OAEP wraps a fresh ChaCha20-Poly1305 key), the open says `sealed` and is
//! signed, and the node's reply comes back as one payload sealed for the user's key, which
//! this client opens. Sealing needs signing: the reply is sealed for the signing user.
//!
//! The private-key operation (unwrapping the reply's key) is an [`Unsealer`] handed in
//! (`cocaine-keys` has one over OpenSSL); fresh keys and nonces come from the system's random
//! source.

use std::fs::File;
use std::io::Read;

use cocaine_core::auth::seal::{self, Direction, Random, SealError, Unsealer};
use cocaine_core::auth::PublicKey;

use crate::error::ClientError;

/// The node's public key, the user's key that opens replies, the random source.
pub(crate) struct Sealing {
    node_key: PublicKey,
    opener: Box<dyn Unsealer>,
    random: Urandom,
}

impl Sealing {
    pub fn new(node_key_pem: &[u8], opener: Box<dyn Unsealer>) -> Result<Sealing, ClientError> {
        let node_key = PublicKey::from_pem(node_key_pem)
            .map_err(|e| ClientError::Seal(format!("the node's public key: {e}")))?;
        let random = File::open("/dev/urandom")
            .map_err(|e| ClientError::Seal(format!("no random source: {e}")))?;
        Ok(Sealing {
            node_key,
            opener,
            random: Urandom(random),
        })
    }

    /// The body sealed for the node, bound to the user, the app and the open's nonce.
    pub fn seal_body(
        &mut self,
        user: &str,
        app: &str,
        nonce: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let aad = seal::associated_data(Direction::Request, user, app, nonce.as_bytes());
        seal::seal(&self.node_key, body, &aad, &mut self.random)
            .map_err(|e| ClientError::Seal(e.to_string()))
    }

    /// A sealed reply opened with the user's key.
    pub fn open_reply(
        &mut self,
        user: &str,
        app: &str,
        nonce: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        let aad = seal::associated_data(Direction::Reply, user, app, nonce.as_bytes());
        seal::open(sealed, &aad, self.opener.as_ref(), &mut self.random)
            .map_err(|e| ClientError::Seal(format!("the sealed reply: {e}")))
    }
}

/// The kernel's random source.
struct Urandom(File);

impl Random for Urandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), SealError> {
        self.0
            .read_exact(out)
            .map_err(|e| SealError::Random(e.to_string()))
    }
}
