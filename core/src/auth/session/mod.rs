//! Session keys: fast signed traffic (docs/security.md, "Session keys"). A client signs one
//! session-open (a native open of the event [`SESSION_EVENT`], RSA-PSS as any signed open);
//! the node answers with a fresh 32-byte key sealed to the client's registered public key
//! (RSA-OAEP, SHA-256: a public-key operation), a session id and an expiry. Later requests
//! carry `auth = {session, seq, app, body, mac}` with `mac` an HMAC-SHA-256 under that key,
//! which costs both sides microseconds instead of an RSA operation.
//!
//! Sans-IO like the rest of the core: randomness comes in as a [`Seed`] the runtime draws
//! from the system (the core expands it with an HMAC-DRBG and never reads a random source),
//! time comes in as an argument.
//!
//! - [`drbg`]: HMAC-DRBG (NIST SP 800-90A) over the seed: session ids, keys, OAEP seeds.
//! - [`window`]: the sequence numbers seen in a session (a sliding window of 128).
//! - [`store`]: the sessions, their expiry, bounds and counters.
//! - [`request`]: for clients: a session from the node's grant, MAC'd opens.
//! - [`error`]: why a request in a session (or a session-open) was refused.

pub mod drbg;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod request;
pub mod store;
pub mod window;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use drbg::{Drbg, Seed};
pub use error::{SessionError, SessionStats};
pub use request::{open_session_request, ClientSession, KeyUnwrapper};
pub use store::{SessionLimits, SessionStore};
pub use window::SeqWindow;

/// The event of a session-open: a signed native open of this event never reaches a worker;
/// the node answers it with a session (`[1, session, wrapped_key, expires_ms]`).
pub const SESSION_EVENT: &str = "cocaine.session";

/// HMAC-SHA-256 of `message` under `key`.
pub fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    h.update(message);
    h.finalize().into_bytes().into()
}

/// True when `tag` is the HMAC-SHA-256 of `message` under `key`, compared in constant time.
pub fn mac_ok(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    h.update(message);
    h.verify_slice(tag).is_ok()
}
