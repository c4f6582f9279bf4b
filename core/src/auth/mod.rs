//! Signed requests: who sent a request, proved with an RSA-PSS signature, and that it is
//! fresh. Pure and sans-IO like the rest of the core: keys arrive as bytes (the runtime reads
//! the key folder and feeds what changed), time arrives as an argument.
//!
//! Only public-key operations happen here (checking a signature), so the `rsa` crate is safe
//! to use: its open timing advisory (RUSTSEC-2023-0071) is about private-key operations,
//! which live in the adapters behind a constant-time library. `docs/security.md` has the
//! threat model and the formats.
//!
//! - [`keys`]: a public key read from PEM, its fingerprint, the key store (user → key).
//! - [`signature`]: the RSA-PSS/SHA-256 check over the exact signed bytes.
//! - [`replay`]: the time window and the bounded cache of seen nonces.
//! - [`verifier`]: the three together, in the order that keeps the cache honest, with
//!   counters per reason.
//! - [`mode`]: whether an endpoint needs signatures (`off`, `optional`, `required`).
//! - [`session`]: session keys, for signed traffic without an RSA operation per request.
//! - [`node_key`]: the node's own key pair, as a handle the runtime holds.
//! - [`seal`]: sealed payloads (RSA-OAEP-wrapped ChaCha20-Poly1305), around an [`Unsealer`]
//!   and a [`Random`] the adapters implement.
//! - [`sign`]: building signed requests for clients around a [`Signer`] the adapters
//!   implement (the private-key operation never happens in the core).

pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod keys;
pub mod mode;
pub mod node_key;
pub mod replay;
pub mod seal;
#[cfg(feature = "fuzzing")]
pub mod seal_fuzzing;
pub mod session;
pub mod sign;
pub mod signature;
pub mod verifier;

pub use error::{AuthError, KeyError};
pub use keys::{check_user_name, KeyStore, PublicKey};
pub use mode::AuthMode;
pub use node_key::{NodeKey, NodeKeyHandle, NodeSigner};
pub use replay::{ReplayGuard, ReplayLimits};
pub use seal::{Random, SealError, Unsealer};
pub use sign::{body_digest, sign_control, sign_open, Invoke, SignError, Signer, Stamp};
pub use verifier::{AuthStats, Claim, Verifier};
