//! Opening a session key the node sealed to a user's public key (docs/security.md, "Session
//! keys"): RSA-OAEP with SHA-256 and MGF1-SHA-256, no label. A private-key operation, so it is
//! OpenSSL's (constant time), never the `rsa` crate's.

use cocaine_core::auth::session::KeyUnwrapper;
use cocaine_core::auth::SignError;
use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::rsa::Padding;

use crate::{KeyError, PrivateKey, UserKey};

impl PrivateKey {
    /// The plaintext of `wrapped`, sealed to this key's public half with RSA-OAEP (SHA-256).
    pub fn unwrap_session_key(&self, wrapped: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut decrypter = Decrypter::new(&self.pkey)?;
        decrypter.set_rsa_padding(Padding::PKCS1_OAEP)?;
        decrypter.set_rsa_oaep_md(MessageDigest::sha256())?;
        decrypter.set_rsa_mgf1_md(MessageDigest::sha256())?;
        let mut out = vec![0; decrypter.decrypt_len(wrapped)?];
        let len = decrypter.decrypt(wrapped, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
}

impl KeyUnwrapper for UserKey {
    fn unwrap_key(&self, wrapped: &[u8]) -> Result<Vec<u8>, SignError> {
        (self.key)
            .unwrap_session_key(wrapped)
            .map_err(|e| SignError(format!("cannot open the session key: {e}")))
    }
}
