//! Sealed native requests (docs/security.md, "Sealed bodies"): an open with `policy.sealed`
//! carries a body sealed for the node's key. The node opens it, once the signed body has
//! ended and matched its digest, before any worker sees it; the reply's chunks are gathered
//! and sealed, as one payload, for the caller's registered public key.
//!
//! The node's private key never enters the core: the runtime hands in an [`Unsealer`] over
//! OpenSSL and a [`Random`] for reply keys and nonces ([`super::Node::set_sealing`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::driver::Cx;
use super::native_auth::Verified;
use crate::auth::seal::{self, Direction, Random, SealError, Unsealer};
use crate::auth::PublicKey;
use crate::codec::native::Auth;
use crate::engine::ReplyEvent;
use crate::status::{self, Failure};

/// The node's means to open and seal, and the counters (control `keys`, `sealed`).
#[derive(Default)]
pub(super) struct SealState {
    unsealer: Option<Arc<dyn Unsealer>>,
    random: Option<Box<dyn Random>>,
    pub stats: SealStats,
}

impl fmt::Debug for SealState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealState")
            .field("can_open", &self.unsealer.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

impl SealState {
    pub(super) fn set(&mut self, unsealer: Arc<dyn Unsealer>, random: Box<dyn Random>) {
        self.unsealer = Some(unsealer);
        self.random = Some(random);
    }
}

/// How sealed requests fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealStats {
    /// Bodies opened and handed to a worker.
    pub opened: u64,
    /// Sealed opens without a verified user (unsigned, or the task's auth is off): 401.
    pub unsigned: u64,
    /// Sealed opens to a node without a key pair: 400.
    pub no_node_key: u64,
    /// Bodies that are not a sealed payload: 400.
    pub malformed: u64,
    /// Bodies that did not open (another key, a changed byte): 400.
    pub not_opened: u64,
    /// Replies sealed for their caller.
    pub replies_sealed: u64,
    /// Replies that could not be sealed (over `max-message`, the random source failed): 500.
    pub replies_failed: u64,
}

impl SealStats {
    pub(super) fn json(&self) -> Value {
        json!({
            "opened": self.opened, "unsigned": self.unsigned, "no_node_key": self.no_node_key,
            "malformed": self.malformed, "not_opened": self.not_opened,
            "replies_sealed": self.replies_sealed, "replies_failed": self.replies_failed,
        })
    }
}

/// What a sealed request needs until its reply is out: who it is for and what binds it.
#[derive(Debug, Clone)]
pub(super) struct RequestSeal {
    user: String,
    app: String,
    nonce: Bytes,
    /// The caller's key when the open verified: the reply is sealed for it.
    key: PublicKey,
}

/// Decides a sealed open: a request to hold and open at its end, or why not (a code and a
/// reason). `verified` is what the signature check gave; a sealed request needs a user,
/// since its reply is sealed for that user's key.
pub(super) fn check_open(
    cx: &mut Cx<'_>,
    verified: Option<&Verified>,
    auth: Option<&Auth>,
) -> Result<RequestSeal, (u32, String)> {
    let stats = &mut cx.seal().stats;
    let (Some(verified), Some(auth)) = (verified, auth) else {
        stats.unsigned += 1;
        let why = "a sealed request must be signed by a known user, and checked (the task's \
                   security.auth must not be off): its reply is sealed for that user's key";
        return Err((status::UNAUTHORIZED, why.to_owned()));
    };
    if cx.seal().unsealer.is_none() {
        cx.seal().stats.no_node_key += 1;
        let why = "this node has no key pair (it keeps no state folder), so it cannot open \
                   sealed requests";
        return Err((status::BAD_REQUEST, why.to_owned()));
    }
    let Some(key) = cx.verifier().keys().get(&verified.user).cloned() else {
        // Verified a moment ago; the store cannot have changed since.
        cx.seal().stats.unsigned += 1;
        return Err((
            status::UNAUTHORIZED,
            format!("unknown user {:?}", verified.user),
        ));
    };
    Ok(RequestSeal {
        user: verified.user.clone(),
        app: auth.app.clone().unwrap_or_default(),
        nonce: auth.nonce.clone(),
        key,
    })
}

/// Opens a held request's body (its chunks are the sealed payload); the plaintext, or a 400
/// with the reason.
pub(super) fn open_body(
    cx: &mut Cx<'_>,
    seal: &RequestSeal,
    chunks: &[Bytes],
) -> Result<Bytes, (u32, String)> {
    let sealed: Vec<u8> = if let [one] = chunks {
        one.to_vec()
    } else {
        chunks.concat()
    };
    let aad = seal::associated_data(Direction::Request, &seal.user, &seal.app, &seal.nonce);
    let state = cx.seal();
    let (Some(unsealer), Some(random)) = (state.unsealer.clone(), state.random.as_mut()) else {
        state.stats.no_node_key += 1;
        return Err((
            status::BAD_REQUEST,
            "this node cannot open sealed requests".into(),
        ));
    };
    match seal::open(&sealed, &aad, unsealer.as_ref(), random.as_mut()) {
        Ok(plain) => {
            state.stats.opened += 1;
            Ok(Bytes::from(plain))
        }
        Err(e) => {
            match e {
                SealError::NotOpened => state.stats.not_opened += 1,
                _ => state.stats.malformed += 1,
            }
            Err((status::BAD_REQUEST, e.to_string()))
        }
    }
}

/// A sealed request's reply while it is gathered.
#[derive(Debug)]
pub(super) struct ReplySeal {
    seal: RequestSeal,
    chunks: Vec<Bytes>,
    size: usize,
}

/// What to do with one reply event of a sealed request.
pub(super) enum Step {
    /// Gathered; nothing goes out yet.
    Hold,
    /// Send the sealed reply `chunk` if any, then this terminal `event`; `cancel` the job if
    /// it is still running.
    Send {
        chunk: Option<Bytes>,
        event: ReplyEvent,
        cancel: bool,
    },
}

impl ReplySeal {
    pub(super) fn new(seal: RequestSeal) -> ReplySeal {
        ReplySeal {
            seal,
            chunks: Vec::new(),
            size: 0,
        }
    }

    /// Takes one reply event: chunks are gathered (up to the engine's `max-message`), the end
    /// sends them sealed as one chunk, an error goes out as it is (codes and messages are not
    /// sealed).
    pub(super) fn step(&mut self, cx: &mut Cx<'_>, event: ReplyEvent) -> Step {
        let limit = cx.max_message();
        let plaintext = match event {
            ReplyEvent::Chunk(data) => {
                self.size += data.len();
                if self.size > limit {
                    cx.seal().stats.replies_failed += 1;
                    let why = format!("the reply is over {limit} bytes, too large to seal");
                    return Step::Send {
                        chunk: None,
                        event: ReplyEvent::Error(Failure::new(status::INTERNAL_ERROR, why)),
                        cancel: true,
                    };
                }
                self.chunks.push(data);
                return Step::Hold;
            }
            ReplyEvent::End => std::mem::take(&mut self.chunks).concat(),
            ReplyEvent::Collected(chunks) => chunks.concat(),
            other => {
                return Step::Send {
                    chunk: None,
                    event: other,
                    cancel: false,
                }
            }
        };
        match self.seal_reply(cx, &plaintext) {
            Ok(sealed) => {
                cx.seal().stats.replies_sealed += 1;
                Step::Send {
                    chunk: Some(Bytes::from(sealed)),
                    event: ReplyEvent::End,
                    cancel: false,
                }
            }
            Err(e) => {
                cx.seal().stats.replies_failed += 1;
                let why = format!("the reply could not be sealed: {e}");
                Step::Send {
                    chunk: None,
                    event: ReplyEvent::Error(Failure::new(status::INTERNAL_ERROR, why)),
                    cancel: false,
                }
            }
        }
    }

    fn seal_reply(&self, cx: &mut Cx<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let s = &self.seal;
        let aad = seal::associated_data(Direction::Reply, &s.user, &s.app, &s.nonce);
        let Some(random) = cx.seal().random.as_mut() else {
            return Err(SealError::Random("the node has no random source".into()));
        };
        seal::seal(&s.key, plaintext, &aad, random.as_mut())
    }
}
