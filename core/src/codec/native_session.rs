//! Session frames of the native protocol (docs/protocol.md §10, docs/security.md "Session
//! keys"): the `auth` map of a request made in a session, `{session, seq, app, body, mac}`
//! with `session` first and `mac` last, and the reply to a session-open,
//! `[1, session, wrapped_key, expires_ms]`.
//!
//! The MAC covers the open encoded without `mac`, exactly as a signature covers the open
//! without `sig`: the frame's own bytes less the `mac` entry, the map's one-byte header one
//! less. The node checks what was sent, never a re-encoding.

use bytes::{Bytes, BytesMut};

use super::mp::{self, Reader};
use super::native::{encode_policy, kind, Policy, BODY_DIGEST_LEN};
use super::DecodeError;

/// The length of a session id, in bytes.
pub const SESSION_ID_LEN: usize = 16;
/// The length of a session key and of a MAC (HMAC-SHA-256), in bytes.
pub const SESSION_KEY_LEN: usize = 32;
/// The length of `auth.mac`.
pub const MAC_LEN: usize = 32;
/// The version of the session-open reply's layout.
pub const GRANT_VERSION: u64 = 1;
/// The longest wrapped key a grant may carry: RSA-OAEP under a 4096-bit key is 512 bytes.
pub const MAX_WRAPPED_KEY: usize = 512;

/// The `auth` map of a request made in a session: which session, its sequence number, the
/// app and the SHA-256 of the body, and the HMAC-SHA-256 of the open without `mac`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    /// The session id the node gave (16 bytes).
    pub session: Bytes,
    /// The request's sequence number within the session, from 1.
    pub seq: u64,
    /// The app the request is meant for.
    pub app: String,
    /// The SHA-256 of the whole request body (32 bytes).
    pub body: Bytes,
    /// HMAC-SHA-256 with the session key over the open encoded without `mac` (32 bytes).
    pub mac: Bytes,
}

/// The session-open reply's body: the session id, the session key sealed to the client's
/// public key (RSA-OAEP, SHA-256), and when the session ends at the latest (the node's clock,
/// unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    pub session: Bytes,
    pub wrapped_key: Bytes,
    pub expires_ms: u64,
}

/// True when the `auth` map that comes next in `r` is a session's (its first key is
/// `session`); the reader does not move.
pub(crate) fn is_session_auth(r: &Reader<'_>) -> bool {
    let mut peek = r.clone();
    matches!(peek.map_len("auth"), Ok(n) if n > 0) && peek.key("auth").ok() == Some("session")
}

/// Reads a session `auth` map; returns it and the bytes its MAC covers.
pub(crate) fn decode_session_auth(
    r: &mut Reader<'_>,
    frame: &[u8],
) -> Result<(SessionAuth, Bytes), DecodeError> {
    const MAP: &str = "auth";
    let map_at = r.offset_in(frame);
    let len = r.map_len(MAP)?;
    if len != 5 || frame.get(map_at) != Some(&0x85) {
        return Err(DecodeError::WrongType {
            field: "auth",
            expected: "a session map of exactly session, seq, app, body and mac",
        });
    }
    let (mut session, mut seq, mut app, mut body, mut mac) = (None, None, None, None, None);
    let mut mac_at = 0;
    for index in 0..len {
        let key_at = r.offset_in(frame);
        match r.key(MAP)? {
            "session" if index == 0 => {
                let id = fixed(r.bin("auth.session")?, SESSION_ID_LEN, "auth.session")?;
                session = Some(id);
            }
            "seq" => mp::set_once(&mut seq, r.uint("auth.seq")?, MAP, "seq")?,
            "app" => mp::set_once(&mut app, r.str("auth.app")?.to_owned(), MAP, "app")?,
            "body" => {
                let digest = fixed(r.bin("auth.body")?, BODY_DIGEST_LEN, "auth.body")?;
                mp::set_once(&mut body, digest, MAP, "body")?
            }
            "mac" if index + 1 == len => {
                mac_at = key_at;
                mac = Some(fixed(r.bin("auth.mac")?, MAC_LEN, "auth.mac")?);
            }
            "session" => {
                return Err(DecodeError::WrongType {
                    field: "auth.session",
                    expected: "the first key of a session auth",
                })
            }
            "mac" => {
                return Err(DecodeError::WrongType {
                    field: "auth.mac",
                    expected: "the last key of auth",
                })
            }
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    let missing = |key| DecodeError::MissingKey { map: MAP, key };
    let auth = SessionAuth {
        session: session.ok_or_else(|| missing("session"))?,
        seq: seq.ok_or_else(|| missing("seq"))?,
        app: app.ok_or_else(|| missing("app"))?,
        body: body.ok_or_else(|| missing("body"))?,
        mac: mac.ok_or_else(|| missing("mac"))?,
    };
    let mut maced = Vec::with_capacity(mac_at);
    maced.extend_from_slice(&frame[..map_at]);
    maced.push(0x84);
    maced.extend_from_slice(&frame[map_at + 1..mac_at]);
    Ok((auth, Bytes::from(maced)))
}

fn fixed(bytes: &[u8], len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
    if bytes.len() != len {
        return Err(DecodeError::WrongType {
            field,
            expected: match len {
                SESSION_ID_LEN => "16 bytes",
                _ => "32 bytes",
            },
        });
    }
    Ok(Bytes::copy_from_slice(bytes))
}

/// The open with the `auth` map's header (`len` keys) and every entry but `mac`.
fn encode_head(sid: u64, event: &str, policy: &Policy, auth: &SessionAuth, len: u32) -> BytesMut {
    let mut out = BytesMut::with_capacity(6 * mp::MAX_HEAD + event.len() + auth.app.len() + 200);
    mp::put_array_len(&mut out, 5);
    mp::put_uint(&mut out, kind::OPEN);
    mp::put_uint(&mut out, sid);
    mp::put_str(&mut out, event);
    encode_policy(&mut out, policy);
    mp::put_map_len(&mut out, len);
    mp::put_str(&mut out, "session");
    mp::put_bin(&mut out, &auth.session);
    mp::put_str(&mut out, "seq");
    mp::put_uint(&mut out, auth.seq);
    mp::put_str(&mut out, "app");
    mp::put_str(&mut out, &auth.app);
    mp::put_str(&mut out, "body");
    mp::put_bin(&mut out, &auth.body);
    out
}

/// The bytes a session request's MAC covers: the open with `auth` lacking `mac`
/// (`auth.mac` is not read).
pub fn encode_session_open_maced_part(
    sid: u64,
    event: &str,
    policy: &Policy,
    auth: &SessionAuth,
) -> Bytes {
    encode_head(sid, event, policy, auth, 4).freeze()
}

/// Encodes the open `[3, sid, event, policy, {session, seq, app, body, mac}]` of a request
/// made in a session.
pub fn encode_session_open(sid: u64, event: &str, policy: &Policy, auth: &SessionAuth) -> Bytes {
    let mut out = encode_head(sid, event, policy, auth, 5);
    mp::put_str(&mut out, "mac");
    mp::put_bin(&mut out, &auth.mac);
    out.freeze()
}

/// Encodes a session-open reply's body `[1, session, wrapped_key, expires_ms]`.
pub fn encode_grant(grant: &SessionGrant) -> Bytes {
    let mut out = BytesMut::with_capacity(4 * mp::MAX_HEAD + 64 + grant.wrapped_key.len());
    mp::put_array_len(&mut out, 4);
    mp::put_uint(&mut out, GRANT_VERSION);
    mp::put_bin(&mut out, &grant.session);
    mp::put_bin(&mut out, &grant.wrapped_key);
    mp::put_uint(&mut out, grant.expires_ms);
    out.freeze()
}

/// Decodes a session-open reply's body (what a client does with the node's answer).
///
/// # Errors
///
/// A [`DecodeError`] naming what was wrong: not `[1, bin16, bin, uint]`, a wrapped key over
/// [`MAX_WRAPPED_KEY`] bytes, trailing bytes. No input panics.
pub fn decode_grant(body: &[u8]) -> Result<SessionGrant, DecodeError> {
    let mp::Head {
        kind: version,
        arity,
        body: mut r,
    } = Reader::message(body)?;
    if version != GRANT_VERSION {
        return Err(DecodeError::UnknownKind(version));
    }
    if arity != 4 {
        return Err(DecodeError::WrongArity {
            kind: version,
            expected: 4,
            got: arity,
        });
    }
    let session = fixed(r.bin("session")?, SESSION_ID_LEN, "session")?;
    let wrapped = r.bin("wrapped_key")?;
    if wrapped.is_empty() || wrapped.len() > MAX_WRAPPED_KEY {
        return Err(DecodeError::WrongType {
            field: "wrapped_key",
            expected: "1 to 512 bytes",
        });
    }
    let expires_ms = r.uint("expires_ms")?;
    r.finish()?;
    Ok(SessionGrant {
        session,
        wrapped_key: Bytes::copy_from_slice(wrapped),
        expires_ms,
    })
}
