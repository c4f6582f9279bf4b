//! Signed announcements (docs/cluster.md, "Signed announcements"): a node signs the bytes of
//! its announcement before `sig` with its own key (RSA-PSS/SHA-256, through the runtime's
//! handle: the private key never enters the core), and a peer checks the signature against the
//! key its key folder holds under the sender's node id (`<node_id>.pem`), with the public key
//! only.
//!
//! The check costs one public-key operation, so the peer table runs it last, after the cheap
//! refusals (malformed, own, stale): a duplicate (the same announcement over multicast and
//! unicast) or a replay is dropped as stale without it, so an honest peer costs one check per
//! announcement it sends, and a `seq` is checked at most once.

use crate::auth::{signature, AuthMode, KeyStore, SignError};

use super::announcement::Announcement;

/// Why a signature check refused an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigRefusal {
    /// No `sig`, and the node requires one.
    #[error("unsigned, and this node requires signed announcements")]
    Unsigned,
    /// Signed, but the key folder has no key for the sender's node id.
    #[error("signed by a node whose key this node does not have (<node_id>.pem)")]
    UnknownKey,
    /// The signature does not verify under the sender's key.
    #[error("bad signature")]
    BadSignature,
}

/// Checks `announcement`'s signature over `signed` (the datagram's bytes before `sig`) as
/// `mode` asks: `off` takes anything unchecked, `optional` takes unsigned announcements and
/// checks signed ones, `required` refuses unsigned ones too.
pub fn check(
    mode: AuthMode,
    keys: &KeyStore,
    announcement: &Announcement,
    signed: &[u8],
) -> Result<(), SigRefusal> {
    let sig = match (mode, &announcement.sig) {
        (AuthMode::Off, _) | (AuthMode::Optional, None) => return Ok(()),
        (AuthMode::Required, None) => return Err(SigRefusal::Unsigned),
        (_, Some(sig)) => sig,
    };
    let key = keys
        .get(&announcement.node_id)
        .ok_or(SigRefusal::UnknownKey)?;
    if signature::verify(key, signed, sig) {
        Ok(())
    } else {
        Err(SigRefusal::BadSignature)
    }
}

/// Signs `announcement` in place: `sign` gets [`Announcement::signed_part`] and its answer
/// becomes `sig`.
pub fn sign(
    announcement: &mut Announcement,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, SignError>,
) -> Result<(), SignError> {
    announcement.sig = None;
    let signature = sign(&announcement.signed_part())?;
    announcement.sig = Some(signature.into());
    Ok(())
}
