//! Signed native-protocol requests (docs/security.md): the checks a native-server or
//! native-sink task makes at an open, by its `security` section, and the check of the body
//! against its signed digest once the body has ended. A refusal is counted in the node's
//! auth counters (control `keys`) and answered 401 (403 for a user the task does not allow)
//! before any worker sees the request.

use bytes::Bytes;

use super::driver::Cx;
use crate::auth::{body_digest, AuthError, AuthMode, Claim};
use crate::codec::native::Auth;
use crate::manifest::SecurityConfig;

/// A signed open that verified: who signed it and the SHA-256 its body must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verified {
    pub user: String,
    pub body: Bytes,
}

/// Decides an open by the task's `security`: `Ok(None)` lets it through without a user,
/// `Ok(Some(..))` is a verified signed request whose body must be checked at its end.
/// `signed` is the bytes the signature covers ([`NativeMessage::decode_signed`]).
///
/// [`NativeMessage::decode_signed`]: crate::codec::native::NativeMessage::decode_signed
pub(super) fn check_open(
    cx: &mut Cx<'_>,
    security: Option<&SecurityConfig>,
    auth: Option<&Auth>,
    signed: Option<&[u8]>,
) -> Result<Option<Verified>, AuthError> {
    let mode = security.map_or(AuthMode::Optional, |s| s.auth);
    match (mode, auth, signed) {
        (AuthMode::Off, _, _) | (AuthMode::Optional, None, _) => Ok(None),
        (AuthMode::Required, None, _) | (_, Some(_), None) => Err(cx.verifier().refuse_unsigned()),
        (_, Some(auth), Some(signed)) => verify(cx, security, auth, signed).map(Some),
    }
}

fn verify(
    cx: &mut Cx<'_>,
    security: Option<&SecurityConfig>,
    auth: &Auth,
    signed: &[u8],
) -> Result<Verified, AuthError> {
    let (Some(app), Some(body)) = (&auth.app, &auth.body) else {
        let missing = if auth.app.is_none() { "app" } else { "body" };
        return Err(cx.verifier().refuse(AuthError::Incomplete(missing)));
    };
    let here = cx.app_name();
    if **app != *here {
        let error = AuthError::WrongApp {
            signed_for: app.chars().take(64).collect(),
            here: here.to_string(),
        };
        return Err(cx.verifier().refuse(error));
    }
    let Ok(nonce) = std::str::from_utf8(&auth.nonce) else {
        return Err(cx.verifier().refuse(AuthError::BadNonce("not UTF-8 text")));
    };
    let now_ms = cx.now.unix_ms();
    if let Some(security) = security {
        check_app_window(cx, security, auth.ts, now_ms)?;
    }
    let claim = Claim {
        user: &auth.user,
        ts: auth.ts,
        nonce,
    };
    cx.verifier().verify(claim, signed, &auth.sig, now_ms)?;
    if let Some(users) = security.and_then(|s| s.users.as_ref()) {
        if !users.contains(&auth.user) {
            return Err(cx
                .verifier()
                .refuse(AuthError::NotAllowed(auth.user.clone())));
        }
    }
    Ok(Verified {
        user: auth.user.clone(),
        body: body.clone(),
    })
}

/// The task's own `window`, when it is narrower than the node's (the node's always applies).
fn check_app_window(
    cx: &mut Cx<'_>,
    security: &SecurityConfig,
    ts: u64,
    now_ms: u64,
) -> Result<(), AuthError> {
    let window_ms = u64::try_from(security.window.as_millis()).unwrap_or(u64::MAX);
    let error = if now_ms > ts && now_ms - ts > window_ms {
        AuthError::Expired {
            age_ms: now_ms - ts,
            window_ms,
        }
    } else if ts > now_ms && ts - now_ms > window_ms {
        AuthError::FutureDated {
            ahead_ms: ts - now_ms,
            window_ms,
        }
    } else {
        return Ok(());
    };
    Err(cx.verifier().refuse(error))
}

/// Checks a held body against the digest its open signed.
pub(super) fn check_body(
    cx: &mut Cx<'_>,
    expected: &[u8],
    chunks: &[Bytes],
) -> Result<(), AuthError> {
    if body_digest(chunks.iter().map(|c| &c[..]))[..] == *expected {
        Ok(())
    } else {
        Err(cx.verifier().refuse(AuthError::BodyMismatch))
    }
}
