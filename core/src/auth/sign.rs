//! Building signed requests, for clients: the core computes which bytes are signed and puts
//! the signature where the node looks for it; the private-key operation itself is a
//! [`Signer`] the caller hands in (the adapters implement it over a constant-time library,
//! never with the `rsa` crate, whose private-key operations carry RUSTSEC-2023-0071).
//! Time and nonces come in as arguments: the core has no clock and no random source.
//!
//! An announcement or any other message that wants a signature can take a `&dyn Signer` the
//! same way.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::codec::native::{self, Auth, Policy};

/// A private-key operation failed (the library said why).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// Makes RSA-PSS/SHA-256 signatures (MGF1-SHA-256, 32-byte salt) with one user's private key.
pub trait Signer {
    /// The user whose key signs (`<user>.pem` in the node's key folder).
    fn user(&self) -> &str;
    /// The signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// When and with what nonce a request is signed: the caller's clock (unix milliseconds) and
/// random source (16 to 64 printable characters, e.g. 32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub ts: u64,
    pub nonce: String,
}

/// Signs a control request's JSON frame: adds `user`, `ts` and `nonce` to the object (before
/// its closing brace, so the rest stays byte for byte as written) and returns the new frame
/// and the signature frame that must follow the request's other frames.
///
/// # Errors
///
/// The signer's failure, or a frame that is not a non-empty JSON object's text.
pub fn sign_control(
    json: &[u8],
    stamp: &Stamp,
    signer: &dyn Signer,
) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    let text = std::str::from_utf8(json)
        .map_err(|_| SignError("the control frame is not UTF-8".into()))?
        .trim_end();
    let Some(head) = text.strip_suffix('}') else {
        return Err(SignError("the control frame is not a JSON object".into()));
    };
    let fields = serde_json::json!({"user": signer.user(), "ts": stamp.ts, "nonce": stamp.nonce})
        .to_string();
    // `fields` is `{...}`: its inside joins the object's keys after a comma.
    let mut out = head.trim_end().to_owned();
    out.push(',');
    out.push_str(&fields[1..]);
    let signature = signer.sign(out.as_bytes())?;
    Ok((out.into_bytes(), signature))
}

/// The SHA-256 of a request body, its chunks in order (what a signed open's `auth.body` holds).
pub fn body_digest<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for chunk in chunks {
        hash.update(chunk);
    }
    hash.finalize().into()
}

/// What a signed native open names besides the sid: the app it is meant for, the event, the
/// policy and the SHA-256 of the whole body that will follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoke<'a> {
    pub sid: u64,
    pub app: &'a str,
    pub event: &'a str,
    pub policy: &'a Policy,
    pub body: [u8; 32],
}

/// Encodes a signed native open `[3, sid, event, policy, auth]`: the signature covers the
/// message encoded with `auth` lacking its last key, `sig` (docs/security.md).
pub fn sign_open(
    invoke: &Invoke<'_>,
    stamp: &Stamp,
    signer: &dyn Signer,
) -> Result<Bytes, SignError> {
    let mut auth = Auth {
        user: signer.user().to_owned(),
        ts: stamp.ts,
        nonce: Bytes::copy_from_slice(stamp.nonce.as_bytes()),
        app: Some(invoke.app.to_owned()),
        body: Some(Bytes::copy_from_slice(&invoke.body)),
        sig: Bytes::new(),
    };
    let signed = native::encode_open_signed_part(invoke.sid, invoke.event, invoke.policy, &auth);
    auth.sig = Bytes::from(signer.sign(&signed)?);
    Ok(native::encode_open(
        invoke.sid,
        invoke.event,
        invoke.policy,
        Some(&auth),
    ))
}
