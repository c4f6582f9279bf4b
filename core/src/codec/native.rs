//! The native protocol (docs/protocol.md §2).
//!
//! One ZeroMQ frame holds exactly one message, so there is no length prefix: a message is a
//! msgpack array `[kind, ...]` filling the whole frame. The free `encode_*` functions build a
//! message without a [`NativeMessage`], for the hot path; [`NativeMessage::encode`] uses them.

use bytes::{Bytes, BytesMut};

use super::mp::{self, Reader};
use super::native_session::{self as session, SessionAuth};
use super::DecodeError;

/// Message kinds of the native protocol.
pub mod kind {
    /// `[3, sid, event, policy, auth]`, c -> n.
    pub const OPEN: u64 = 3;
    /// `[4, sid, data]`, both ways.
    pub const CHUNK: u64 = 4;
    /// `[5, sid]`, both ways.
    pub const CHOKE: u64 = 5;
    /// `[6, sid, code, message]`, n -> c.
    pub const ERROR: u64 = 6;
    /// `[7, sid]`, c -> n.
    pub const CANCEL: u64 = 7;
    /// `[9, token]`, both ways.
    pub const PING: u64 = 9;
    /// `[10, token]`, both ways.
    pub const PONG: u64 = 10;
}

/// The `policy` map of an open: every key optional on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Jump the queue.
    pub urgent: bool,
    /// Milliseconds the request may run once started.
    pub timeout_ms: Option<u64>,
    /// Milliseconds from the open after which the request is dropped.
    pub deadline_ms: Option<u64>,
    /// How many nodes handed this request on before it arrived (spillover, docs/cluster.md):
    /// 0 from a client, 1 from a node whose queue was full. A node never forwards a request
    /// whose `hop` is not 0. Sent only when not 0.
    pub hop: u64,
    /// The body is a sealed payload for the node's key, and the reply is sealed for the
    /// caller's (docs/security.md). Part of the signed open, so it cannot be stripped.
    pub sealed: bool,
}

/// The `auth` map of a signed open (docs/protocol.md §10, docs/security.md). `user`, `ts`,
/// `nonce` and `sig` are required, and `sig` comes last: the signature covers the open encoded
/// without it. `app` and `body` may be absent on the wire, but a node refuses a signed
/// request that lacks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The user whose key signed the message.
    pub user: String,
    /// Unix milliseconds when the message was signed.
    pub ts: u64,
    /// A value unique within the replay window; sent as str or bin, encoded as bin.
    pub nonce: Bytes,
    /// The app the request is meant for, so a signed request cannot be sent to another app.
    pub app: Option<String>,
    /// The SHA-256 of the whole request body (its chunks concatenated), 32 bytes.
    pub body: Option<Bytes>,
    /// The signature.
    pub sig: Bytes,
}

/// The most keys an `auth` map may have: its header is then one byte (a fixmap), and the
/// signed bytes differ from the frame only in that byte and the `sig` entry.
const MAX_AUTH_KEYS: usize = 15;

/// The length of `auth.body`, a SHA-256.
pub const BODY_DIGEST_LEN: usize = 32;

/// One message of the native protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeMessage {
    /// Open request `sid` (c -> n); an empty `event` means the task's name.
    Open {
        sid: u64,
        event: String,
        policy: Policy,
        auth: Option<Auth>,
    },
    /// Open request `sid` in a session (c -> n): an open whose `auth` is a session's
    /// (`{session, seq, app, body, mac}`, docs/security.md "Session keys").
    OpenInSession {
        sid: u64,
        event: String,
        policy: Policy,
        auth: SessionAuth,
    },
    /// A request chunk (c -> n) or reply chunk (n -> c).
    Chunk { sid: u64, data: Bytes },
    /// End of the sender's stream.
    Choke { sid: u64 },
    /// The request failed; terminal (n -> c).
    Error {
        sid: u64,
        code: u32,
        message: String,
    },
    /// Cancel request `sid` (c -> n).
    Cancel { sid: u64 },
    /// Asks for a pong with the same token.
    Ping { token: u64 },
    /// Answers a ping.
    Pong { token: u64 },
}

impl NativeMessage {
    /// Decodes one ZeroMQ frame.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] if `frame` exceeds `max_message` bytes, otherwise a
    /// [`DecodeError`] naming what was wrong; no input panics.
    pub fn decode(frame: &[u8], max_message: usize) -> Result<Self, DecodeError> {
        Self::decode_signed(frame, max_message).map(|(message, _)| message)
    }

    /// Decodes one ZeroMQ frame like [`NativeMessage::decode`], and for a signed open (or an
    /// open in a session) also returns the bytes its signature (or MAC) covers: the frame with `auth`'s last entry, `sig`,
    /// taken out and the map's length one less. An `auth` whose last key is not `sig`, or
    /// with more than 15 keys, is refused.
    pub fn decode_signed(
        frame: &[u8],
        max_message: usize,
    ) -> Result<(Self, Option<Bytes>), DecodeError> {
        if frame.len() > max_message {
            return Err(DecodeError::TooLarge {
                size: frame.len(),
                limit: max_message,
            });
        }
        let mp::Head {
            kind,
            arity,
            body: mut r,
        } = Reader::message(frame)?;
        let expected = match kind {
            kind::OPEN => 5,
            kind::CHUNK => 3,
            kind::ERROR => 4,
            kind::CHOKE | kind::CANCEL | kind::PING | kind::PONG => 2,
            _ => return Err(DecodeError::UnknownKind(kind)),
        };
        if arity != expected {
            return Err(DecodeError::WrongArity {
                kind,
                expected,
                got: arity,
            });
        }
        let mut signed = None;
        let msg = match kind {
            kind::OPEN => {
                let (sid, event) = (r.uint("sid")?, r.str("event")?.to_owned());
                let policy = decode_policy(&mut r)?;
                if session::is_session_auth(&r) {
                    let (auth, maced) = session::decode_session_auth(&mut r, frame)?;
                    signed = Some(maced);
                    NativeMessage::OpenInSession {
                        sid,
                        event,
                        policy,
                        auth,
                    }
                } else {
                    let auth = if r.nil() {
                        None
                    } else {
                        let (auth, bytes) = decode_auth(&mut r, frame)?;
                        signed = Some(bytes);
                        Some(auth)
                    };
                    NativeMessage::Open {
                        sid,
                        event,
                        policy,
                        auth,
                    }
                }
            }
            kind::CHUNK => NativeMessage::Chunk {
                sid: r.uint("sid")?,
                data: Bytes::copy_from_slice(r.bytes("data")?),
            },
            kind::CHOKE => NativeMessage::Choke {
                sid: r.uint("sid")?,
            },
            kind::ERROR => NativeMessage::Error {
                sid: r.uint("sid")?,
                code: r.u32("code")?,
                message: r.str("message")?.to_owned(),
            },
            kind::CANCEL => NativeMessage::Cancel {
                sid: r.uint("sid")?,
            },
            kind::PING => NativeMessage::Ping {
                token: r.uint("token")?,
            },
            _ => NativeMessage::Pong {
                token: r.uint("token")?,
            },
        };
        r.finish()?;
        Ok((msg, signed))
    }

    /// Encodes the message as one frame.
    pub fn encode(&self) -> Bytes {
        match self {
            NativeMessage::Open {
                sid,
                event,
                policy,
                auth,
            } => encode_open(*sid, event, policy, auth.as_ref()),
            NativeMessage::OpenInSession {
                sid,
                event,
                policy,
                auth,
            } => session::encode_session_open(*sid, event, policy, auth),
            NativeMessage::Chunk { sid, data } => encode_chunk(*sid, data),
            NativeMessage::Choke { sid } => encode_choke(*sid),
            NativeMessage::Error { sid, code, message } => encode_error(*sid, *code, message),
            NativeMessage::Cancel { sid } => encode_cancel(*sid),
            NativeMessage::Ping { token } => encode_ping(*token),
            NativeMessage::Pong { token } => encode_pong(*token),
        }
    }
}

fn decode_policy(r: &mut Reader<'_>) -> Result<Policy, DecodeError> {
    const MAP: &str = "policy";
    let len = r.map_len(MAP)?;
    let mut urgent = None;
    let mut hop = None;
    let mut sealed = None;
    let mut policy = Policy::default();
    for _ in 0..len {
        match r.key(MAP)? {
            "urgent" => mp::set_once(&mut urgent, r.bool("policy.urgent")?, MAP, "urgent")?,
            "timeout" => mp::set_once(
                &mut policy.timeout_ms,
                r.uint("policy.timeout")?,
                MAP,
                "timeout",
            )?,
            "deadline" => mp::set_once(
                &mut policy.deadline_ms,
                r.uint("policy.deadline")?,
                MAP,
                "deadline",
            )?,
            "hop" => mp::set_once(&mut hop, r.uint("policy.hop")?, MAP, "hop")?,
            "sealed" => mp::set_once(&mut sealed, r.bool("policy.sealed")?, MAP, "sealed")?,
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    policy.urgent = urgent.unwrap_or(false);
    policy.hop = hop.unwrap_or(0);
    policy.sealed = sealed.unwrap_or(false);
    Ok(policy)
}

fn decode_auth(r: &mut Reader<'_>, frame: &[u8]) -> Result<(Auth, Bytes), DecodeError> {
    const MAP: &str = "auth";
    let map_at = r.offset_in(frame);
    let len = r.map_len(MAP)?;
    if len > MAX_AUTH_KEYS {
        return Err(DecodeError::WrongType {
            field: "auth",
            expected: "a map of at most 15 keys",
        });
    }
    let (mut user, mut ts, mut nonce, mut app, mut body, mut sig) =
        (None, None, None, None, None, None);
    let mut sig_at = 0;
    for index in 0..len {
        let key_at = r.offset_in(frame);
        match r.key(MAP)? {
            "user" => mp::set_once(&mut user, r.str("auth.user")?.to_owned(), MAP, "user")?,
            "ts" => mp::set_once(&mut ts, r.uint("auth.ts")?, MAP, "ts")?,
            "nonce" => mp::set_once(
                &mut nonce,
                Bytes::copy_from_slice(r.bytes("auth.nonce")?),
                MAP,
                "nonce",
            )?,
            "app" => mp::set_once(&mut app, r.str("auth.app")?.to_owned(), MAP, "app")?,
            "body" => {
                let digest = r.bin("auth.body")?;
                if digest.len() != BODY_DIGEST_LEN {
                    return Err(DecodeError::WrongType {
                        field: "auth.body",
                        expected: "a SHA-256 of 32 bytes",
                    });
                }
                mp::set_once(&mut body, Bytes::copy_from_slice(digest), MAP, "body")?
            }
            "sig" => {
                if index + 1 != len {
                    return Err(DecodeError::WrongType {
                        field: "auth.sig",
                        expected: "the last key of auth",
                    });
                }
                sig_at = key_at;
                mp::set_once(
                    &mut sig,
                    Bytes::copy_from_slice(r.bin("auth.sig")?),
                    MAP,
                    "sig",
                )?
            }
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    let missing = |key| DecodeError::MissingKey { map: MAP, key };
    let auth = Auth {
        user: user.ok_or_else(|| missing("user"))?,
        ts: ts.ok_or_else(|| missing("ts"))?,
        nonce: nonce.ok_or_else(|| missing("nonce"))?,
        app,
        body,
        sig: sig.ok_or_else(|| missing("sig"))?,
    };
    // A map of at most 15 keys read from a fixmap header is one byte, 0x80 | len: the signed
    // bytes have 0x80 | (len - 1) there. (A map16 header for a small map is refused above.)
    if frame.get(map_at) != Some(&(0x80 | len as u8)) {
        return Err(DecodeError::WrongType {
            field: "auth",
            expected: "a map with a one-byte header",
        });
    }
    let mut signed = Vec::with_capacity(sig_at);
    signed.extend_from_slice(&frame[..map_at]);
    signed.push(0x80 | (len as u8 - 1));
    signed.extend_from_slice(&frame[map_at + 1..sig_at]);
    Ok((auth, Bytes::from(signed)))
}

pub(crate) fn encode_policy(out: &mut BytesMut, policy: &Policy) {
    let len = u32::from(policy.urgent)
        + u32::from(policy.timeout_ms.is_some())
        + u32::from(policy.deadline_ms.is_some())
        + u32::from(policy.hop != 0)
        + u32::from(policy.sealed);
    mp::put_map_len(out, len);
    if policy.urgent {
        mp::put_str(out, "urgent");
        mp::put_bool(out, true);
    }
    for (key, value) in [
        ("timeout", policy.timeout_ms),
        ("deadline", policy.deadline_ms),
        ("hop", (policy.hop != 0).then_some(policy.hop)),
    ] {
        if let Some(v) = value {
            mp::put_str(out, key);
            mp::put_uint(out, v);
        }
    }
    if policy.sealed {
        mp::put_str(out, "sealed");
        mp::put_bool(out, true);
    }
}

fn encode_auth(out: &mut BytesMut, auth: Option<&Auth>) {
    let Some(auth) = auth else {
        mp::put_nil(out);
        return;
    };
    encode_auth_fields(out, auth, auth_len(auth));
    mp::put_str(out, "sig");
    mp::put_bin(out, &auth.sig);
}

/// The `auth` map's header (`len` keys) and every entry but `sig`, which goes last.
fn encode_auth_fields(out: &mut BytesMut, auth: &Auth, len: u32) {
    mp::put_map_len(out, len);
    mp::put_str(out, "user");
    mp::put_str(out, &auth.user);
    mp::put_str(out, "ts");
    mp::put_uint(out, auth.ts);
    mp::put_str(out, "nonce");
    mp::put_bin(out, &auth.nonce);
    if let Some(app) = &auth.app {
        mp::put_str(out, "app");
        mp::put_str(out, app);
    }
    if let Some(body) = &auth.body {
        mp::put_str(out, "body");
        mp::put_bin(out, body);
    }
}

/// How many keys `auth` has on the wire, `sig` included.
fn auth_len(auth: &Auth) -> u32 {
    4 + u32::from(auth.app.is_some()) + u32::from(auth.body.is_some())
}

/// The bytes a signed open's signature covers: the open encoded with `auth` lacking `sig`
/// (`auth.sig` is not read). [`encode_open`] with the signature put back gives the frame.
pub fn encode_open_signed_part(sid: u64, event: &str, policy: &Policy, auth: &Auth) -> Bytes {
    let mut out = BytesMut::with_capacity(4 * mp::MAX_HEAD + event.len() + 120 + auth.user.len());
    mp::put_array_len(&mut out, 5);
    mp::put_uint(&mut out, kind::OPEN);
    mp::put_uint(&mut out, sid);
    mp::put_str(&mut out, event);
    encode_policy(&mut out, policy);
    encode_auth_fields(&mut out, auth, auth_len(auth) - 1);
    out.freeze()
}

/// Encodes `[3, sid, event, policy, auth]`: open a request (c -> n).
pub fn encode_open(sid: u64, event: &str, policy: &Policy, auth: Option<&Auth>) -> Bytes {
    let auth_len = auth.map_or(0, |a| {
        64 + a.user.len()
            + a.nonce.len()
            + a.app.as_ref().map_or(0, String::len)
            + a.body.as_ref().map_or(0, Bytes::len)
            + a.sig.len()
    });
    let mut out = BytesMut::with_capacity(4 * mp::MAX_HEAD + event.len() + 40 + auth_len);
    mp::put_array_len(&mut out, 5);
    mp::put_uint(&mut out, kind::OPEN);
    mp::put_uint(&mut out, sid);
    mp::put_str(&mut out, event);
    encode_policy(&mut out, policy);
    encode_auth(&mut out, auth);
    out.freeze()
}

/// Encodes `[4, sid, data]`, `data` as msgpack bin.
pub fn encode_chunk(sid: u64, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(3 * mp::MAX_HEAD + data.len());
    mp::put_array_len(&mut out, 3);
    mp::put_uint(&mut out, kind::CHUNK);
    mp::put_uint(&mut out, sid);
    mp::put_bin(&mut out, data);
    out.freeze()
}

/// Encodes `[5, sid]`: end of the sender's stream.
pub fn encode_choke(sid: u64) -> Bytes {
    encode_pair(kind::CHOKE, sid)
}

/// Encodes `[7, sid]`: cancel (c -> n).
pub fn encode_cancel(sid: u64) -> Bytes {
    encode_pair(kind::CANCEL, sid)
}

/// Encodes `[9, token]`.
pub fn encode_ping(token: u64) -> Bytes {
    encode_pair(kind::PING, token)
}

/// Encodes `[10, token]`.
pub fn encode_pong(token: u64) -> Bytes {
    encode_pair(kind::PONG, token)
}

fn encode_pair(kind: u64, value: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(2 * mp::MAX_HEAD);
    mp::put_array_len(&mut out, 2);
    mp::put_uint(&mut out, kind);
    mp::put_uint(&mut out, value);
    out.freeze()
}

/// Encodes `[6, sid, code, message]`: the request failed (n -> c).
pub fn encode_error(sid: u64, code: u32, message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(4 * mp::MAX_HEAD + message.len());
    mp::put_array_len(&mut out, 4);
    mp::put_uint(&mut out, kind::ERROR);
    mp::put_uint(&mut out, sid);
    mp::put_uint(&mut out, u64::from(code));
    mp::put_str(&mut out, message);
    out.freeze()
}
