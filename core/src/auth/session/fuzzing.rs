//! Checks for the `auth_session` fuzz target and its corpus replay: any bytes as a native
//! frame read as a node reads an open in a session, or as a session-open reply (a grant) read
//! as a client reads it. Nothing may panic; the MAC'd bytes are the frame without `mac`;
//! garbage never carries a valid MAC under a fixed key unless it was made with it, and a valid
//! one stops verifying when a byte changes.

use super::{mac, mac_ok};
use crate::codec::native::NativeMessage;
use crate::codec::native_session::{
    decode_grant, encode_grant, encode_session_open, encode_session_open_maced_part,
};
use crate::codec::DecodeError;

/// The session key the corpus's valid seeds were made with.
pub const FIXED_SESSION_KEY: [u8; 32] = [0x5a; 32];

/// The first byte picks the check: even reads the rest as a native frame (an open in a
/// session), odd as a grant.
pub fn check_session_input(data: &[u8]) {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => check_session_open(rest),
        Some((_, rest)) => check_grant(rest),
        None => {}
    }
}

/// Any bytes as a native frame: an open in a session gives MAC'd bytes shorter than the frame
/// that do not themselves read as one; our own encoding's MAC'd part is what a client MACs; a
/// valid MAC under the fixed key stops verifying when changed.
pub fn check_session_open(data: &[u8]) {
    let Ok((message, maced)) = NativeMessage::decode_signed(data, 1 << 20) else {
        return;
    };
    let NativeMessage::OpenInSession {
        sid,
        event,
        policy,
        auth,
    } = message
    else {
        return;
    };
    let maced = maced.expect("an open in a session has MAC'd bytes");
    assert!(maced.len() < data.len());
    assert!(matches!(
        NativeMessage::decode(&maced, 1 << 20),
        Err(DecodeError::WrongType { field: "auth", .. })
    ));
    if encode_session_open(sid, &event, &policy, &auth)[..] == *data {
        assert_eq!(
            encode_session_open_maced_part(sid, &event, &policy, &auth),
            maced
        );
    }
    if mac_ok(&FIXED_SESSION_KEY, &maced, &auth.mac) {
        assert_eq!(mac(&FIXED_SESSION_KEY, &maced)[..], auth.mac[..]);
        let mut bad = auth.mac.to_vec();
        bad[0] ^= 1;
        assert!(!mac_ok(&FIXED_SESSION_KEY, &maced, &bad));
        let mut changed = maced.to_vec();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(!mac_ok(&FIXED_SESSION_KEY, &changed, &auth.mac));
    }
}

/// Any bytes as a grant: an error, or a grant that encodes to bytes reading back the same.
pub fn check_grant(data: &[u8]) {
    if let Ok(grant) = decode_grant(data) {
        assert_eq!(grant.session.len(), 16);
        assert!(!grant.wrapped_key.is_empty() && grant.wrapped_key.len() <= 512);
        assert_eq!(decode_grant(&encode_grant(&grant)), Ok(grant));
    }
}
