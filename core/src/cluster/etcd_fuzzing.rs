//! The property check of the `etcd_record` fuzz target, kept here so that `cargo test`
//! replays the committed corpus with the same check.
//!
//! Unlike the rest of the core this panics, on purpose: a panic is how a fuzzer learns that a
//! property failed. Nothing outside fuzzing and tests should call it.

use super::etcd::{decode_app, decode_member, Layout, DEFAULT_PREFIX};

/// Checks the decoders of values read from etcd on `data`: its first byte picks the member
/// decoder (even) or the app record decoder (odd), the rest is the value (and, split at the
/// first zero byte for the key parser, a key). Deterministic; what is accepted encodes back
/// to a value that decodes the same.
///
/// # Panics
///
/// When a property fails.
pub fn check_etcd_record(data: &[u8]) {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    let layout = Layout::new(DEFAULT_PREFIX).expect("the default prefix is valid");
    let key = value.split(|&b| b == 0).next().unwrap_or_default();
    assert_eq!(layout.parse(key), layout.parse(key), "not deterministic");
    if pick % 2 == 0 {
        let result = decode_member("node-a", value);
        assert_eq!(result, decode_member("node-a", value), "not deterministic");
        if let Ok(a) = result {
            let again = a.encode().expect("an accepted announcement encodes");
            assert_eq!(decode_member("node-a", &again), Ok(a), "no round trip");
        }
    } else {
        let result = decode_app("echo", value);
        assert_eq!(result, decode_app("echo", value), "not deterministic");
        if let Ok(r) = result {
            assert_eq!(decode_app("echo", &r.encode()), Ok(r), "no round trip");
        }
    }
}
