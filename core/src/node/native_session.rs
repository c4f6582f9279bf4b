//! Session keys on native-protocol tasks (docs/security.md, "Session keys"): a signed open of
//! the event `cocaine.session` is answered by the node with a session, never by a worker; an
//! open in a session is checked by its MAC instead of a signature, then goes on as a verified
//! signed request does (held until its body matches, the user in the job's meta). Refusals are
//! counted in the node's session counters (control `keys`, `"sessions"`).

use bytes::Bytes;

use super::driver::{Cx, Job};
use super::native_auth::{self, Verified};
use crate::auth::session::{SessionError, SESSION_EVENT};
use crate::auth::AuthMode;
use crate::codec::native::{self, Auth};
use crate::codec::native_session::{encode_grant, SessionAuth};
use crate::manifest::SecurityConfig;

/// What an open carries to prove who sent it.
pub(super) enum Credential<'a> {
    /// No `auth`, or a signature map with the bytes it covers.
    Signed(Option<(&'a Auth, &'a [u8])>),
    /// A session map with the bytes its MAC covers.
    Session(&'a SessionAuth, &'a [u8]),
}

/// True for a session-open (its event is [`SESSION_EVENT`]).
pub(super) fn is_session_open(job: &Job) -> bool {
    job.event.as_deref() == Some(SESSION_EVENT)
}

/// Refuses a sealed open that a session would carry (400, counted as a bad open): a sealed
/// body is bound to the signature's nonce and its reply sealed for the signer's key, and a
/// session's MAC and seq give neither. A session-open is never sealed either (its body is
/// empty). Sealed requests are signed per request.
pub(super) fn refuse_sealed(
    cx: &mut Cx<'_>,
    credential: &Credential<'_>,
    session_open: bool,
) -> Result<(), (u32, String)> {
    if session_open || matches!(credential, Credential::Session(..)) {
        let e = cx.verifier().sessions_mut().refuse(SessionError::Sealed);
        return Err((e.code(), e.to_string()));
    }
    Ok(())
}

impl<'a> Credential<'a> {
    /// The signature map, when the open is signed (a sealed request is bound to it).
    pub(super) fn signed_auth(&self) -> Option<&'a Auth> {
        match self {
            Credential::Signed(signed) => signed.map(|(auth, _)| auth),
            Credential::Session(..) => None,
        }
    }

    /// Decides an open by the task's `security`: `Ok(None)` lets it through without a user,
    /// `Ok(Some(..))` is verified and its body must be checked at its end; otherwise the code
    /// and message to answer. A session-open must be signed, on a task that checks signatures.
    pub(super) fn check(
        self,
        cx: &mut Cx<'_>,
        security: Option<&SecurityConfig>,
        session_open: bool,
    ) -> Result<Option<Verified>, (u32, String)> {
        let refused = |e: SessionError| (e.code(), e.to_string());
        if session_open {
            let sessions = cx.verifier().sessions_mut();
            if security.is_some_and(|s| s.auth == AuthMode::Off) {
                return Err(refused(sessions.refuse(SessionError::TaskOff)));
            }
            if !matches!(self, Credential::Signed(Some(_))) {
                return Err(refused(sessions.refuse(SessionError::Unsigned)));
            }
        }
        match self {
            Credential::Signed(signed) => {
                let (auth, bytes) = signed.unzip();
                native_auth::check_open(cx, security, auth, bytes)
                    .map_err(|e| (e.code(), e.to_string()))
            }
            Credential::Session(auth, maced) => {
                check_session(cx, security, auth, maced).map_err(refused)
            }
        }
    }
}

/// An open in a session, by the task's mode: not checked under `off` (no user, as a signed
/// open there), otherwise the app, the session (known, live, MAC, seq) and `users`.
fn check_session(
    cx: &mut Cx<'_>,
    security: Option<&SecurityConfig>,
    auth: &SessionAuth,
    maced: &[u8],
) -> Result<Option<Verified>, SessionError> {
    if security.is_some_and(|s| s.auth == AuthMode::Off) {
        return Ok(None);
    }
    let here = cx.app_name();
    let now = cx.now;
    let sessions = cx.verifier().sessions_mut();
    if *auth.app != *here {
        let error = SessionError::WrongApp {
            made_for: auth.app.chars().take(64).collect(),
            here: here.to_string(),
        };
        return Err(sessions.refuse(error));
    }
    let user = sessions.check(auth, maced, now)?;
    if let Some(users) = security.and_then(|s| s.users.as_ref()) {
        if !users.contains(&user) {
            return Err(sessions.refuse(SessionError::NotAllowed(user)));
        }
    }
    Ok(Some(Verified {
        user,
        body: auth.body.clone(),
    }))
}

/// The answer to a session-open whose signature and (empty) body checked out: the grant as
/// one chunk and an end, or an error. `user` is the verified signer.
pub(super) fn answer(cx: &mut Cx<'_>, sid: u64, user: &str, chunks: &[Bytes]) -> Vec<Bytes> {
    match grant(cx, user, chunks) {
        Ok(body) => vec![native::encode_chunk(sid, &body), native::encode_choke(sid)],
        Err(e) => vec![native::encode_error(sid, e.code(), &e.to_string())],
    }
}

fn grant(cx: &mut Cx<'_>, user: &str, chunks: &[Bytes]) -> Result<Bytes, SessionError> {
    let now = cx.now;
    let (keys, sessions) = cx.verifier().keys_and_sessions();
    if chunks.iter().any(|c| !c.is_empty()) {
        return Err(sessions.refuse(SessionError::BodyNotEmpty));
    }
    // The key may have gone between the open and its end.
    let Some(key) = keys.get(user) else {
        return Err(sessions.refuse(SessionError::Unknown));
    };
    let grant = sessions.open(user, key, now)?;
    Ok(encode_grant(&grant))
}
