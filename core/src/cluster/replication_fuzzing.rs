//! The property checks of the replication fuzz targets (`fetch_reply`, `tombstone`), kept
//! here so that `cargo test` replays the committed corpus with the same checks.
//!
//! Unlike the rest of the core this panics, on purpose: a panic is how a fuzzer learns that a
//! property failed. Nothing outside fuzzing and tests should call it.

use super::fetch::{decode_reply, encode_reply};
use super::registry::{content_hash, package_digest};
use super::tombstone;
use crate::control::fuzzing::frames;

/// The size limit the check uses: small, so that fuzzed inputs reach it.
pub const FUZZ_MAX_MESSAGE: usize = 4096;

/// Checks [`decode_reply`] on the frames of `data` (see [`frames`]): deterministic; what it
/// accepts is verified (the package matches its digest, the hash the manifest and package)
/// and encodes back to a reply that decodes to the same thing.
///
/// # Panics
///
/// When a property fails.
pub fn check_fetch_reply(data: &[u8]) {
    let frames = frames(data);
    let result = decode_reply(&frames, FUZZ_MAX_MESSAGE);
    assert_eq!(
        result,
        decode_reply(&frames, FUZZ_MAX_MESSAGE),
        "not deterministic"
    );
    let Ok(fetched) = result else { return };
    let digest = fetched.package.as_deref().map(package_digest);
    assert_eq!(
        content_hash(&fetched.manifest_json, digest.as_ref()),
        Some(fetched.hash),
        "accepted a reply whose hash does not match"
    );
    let again = encode_reply(
        &fetched.app,
        fetched.version,
        &fetched.manifest_json,
        fetched.package.as_ref(),
    )
    .expect("an accepted manifest encodes");
    assert_eq!(
        decode_reply(&again, usize::MAX),
        Ok(fetched),
        "no round trip"
    );
}

/// Checks [`tombstone::decode`] on `data` as the tombstone of app `echo`: deterministic, and
/// what it accepts encodes back to bytes that decode the same.
///
/// # Panics
///
/// When a property fails.
pub fn check_tombstone(data: &[u8]) {
    let result = tombstone::decode("echo", data);
    assert_eq!(result, tombstone::decode("echo", data), "not deterministic");
    if let Ok(t) = result {
        assert_eq!(
            tombstone::decode("echo", &tombstone::encode("echo", t)),
            Ok(t)
        );
    }
}
