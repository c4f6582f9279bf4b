//! The property check of the `control_request` fuzz target, kept here so that `cargo test`
//! replays the committed corpus (`tests/control_request.rs`) with the same check.
//!
//! Unlike the rest of the core this panics, on purpose: a panic is how a fuzzer learns that a
//! property failed. Nothing outside fuzzing and tests should call it.

use bytes::Bytes;
use serde_json::Value;

use super::{Action, ControlReply, ControlRequest};

/// The size limit the check uses: small, so that fuzzed inputs reach 413.
pub const FUZZ_MAX_MESSAGE: usize = 1024;

/// Splits fuzz input into frames: the first byte is the separator, the rest is split on it.
/// Empty input gives no frames.
pub fn frames(data: &[u8]) -> Vec<Bytes> {
    let Some((&separator, rest)) = data.split_first() else {
        return Vec::new();
    };
    rest.split(|&b| b == separator)
        .map(Bytes::copy_from_slice)
        .collect()
}

/// Checks [`ControlRequest::decode`] on the frames of `data` (see [`frames`]): it is
/// deterministic; a decoded request keeps the frames where they belong (the signed bytes are
/// the JSON frame, the signature the last frame, a deploy package the frame after the JSON);
/// an error has code 400 or 413 and its reply is the JSON `{"error": {"code", "message"}}`.
///
/// # Panics
///
/// When a property fails.
pub fn check_control_request(data: &[u8]) {
    let frames = frames(data);
    let result = ControlRequest::decode(&frames, FUZZ_MAX_MESSAGE);
    assert_eq!(
        result,
        ControlRequest::decode(&frames, FUZZ_MAX_MESSAGE),
        "decoding is not deterministic"
    );
    match result {
        Ok(request) => {
            if let Some(signed) = &request.signed {
                assert_eq!(
                    signed.signed_bytes, frames[0],
                    "signed bytes are not the JSON"
                );
                assert_eq!(Some(&signed.signature), frames.last(), "signature not last");
            }
            let signature_frames = usize::from(request.signed.is_some());
            match &request.action {
                Action::Deploy { package, .. } => {
                    assert!(
                        frames.len() <= 2 + signature_frames,
                        "extra frames accepted"
                    );
                    if frames.len() == 2 + signature_frames {
                        assert_eq!(package.as_ref(), Some(&frames[1]), "package misplaced");
                    } else {
                        assert!(package.is_none(), "package without a frame");
                    }
                }
                _ => assert_eq!(frames.len(), 1 + signature_frames, "extra frames accepted"),
            }
        }
        Err(error) => {
            let code = error.code();
            assert!(code == 400 || code == 413, "code {code} for {error:?}");
            let too_large = frames.iter().any(|f| f.len() > FUZZ_MAX_MESSAGE);
            assert_eq!(
                code == 413,
                too_large,
                "413 if and only if a frame is too large"
            );
            let encoded = ControlReply::from(&error).encode();
            let reply: Value = serde_json::from_slice(&encoded).expect("reply is not JSON");
            let object = reply.as_object().expect("reply is not an object");
            assert_eq!(object.len(), 1, "reply has more than `error`");
            let inner = reply["error"].as_object().expect("no `error` object");
            assert_eq!(inner.len(), 2, "error has more than code and message");
            assert_eq!(inner["code"].as_u64(), Some(u64::from(code)));
            let message = inner["message"].as_str().expect("message is not a string");
            assert!(!message.is_empty(), "empty message");
            assert!(message.len() <= 1024, "message of {} bytes", message.len());
        }
    }
}
