//! The node's own key pair, as the core sees it: a handle the runtime gives it, which answers
//! with the public half and makes signatures. The private half never enters the core (the
//! adapters hold it, over a constant-time library), and the handle may make the pair on first
//! use: generating a 3072-bit RSA key costs about half a second of CPU, which a node that never
//! needs its key should not pay at start (docs/security.md, "The node's key").

use std::fmt;
use std::sync::Arc;

use super::sign::{SignError, Signer};

/// The node's key pair, held by the runtime. Both calls may block the first time (the pair is
/// read from the state folder or made); later calls cost a signature at most.
pub trait NodeKey: Send + Sync {
    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`).
    fn public_pem(&self) -> Result<String, SignError>;
    /// An RSA-PSS/SHA-256 signature of `message` (MGF1-SHA-256, a 32-byte salt), as a
    /// [`Signer`] makes.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A shared [`NodeKey`], cheap to clone, so that it can sit in the node's configuration.
/// Two handles are equal when they are the same key holder.
#[derive(Clone)]
pub struct NodeKeyHandle(pub Arc<dyn NodeKey>);

impl NodeKeyHandle {
    pub fn new(key: impl NodeKey + 'static) -> Self {
        NodeKeyHandle(Arc::new(key))
    }

    /// The key as a [`Signer`] for `user` (the node's id: peers keep the node's public key as
    /// `<node_id>.pem` in their key folder).
    pub fn signer<'a>(&'a self, user: &'a str) -> NodeSigner<'a> {
        NodeSigner { user, key: self }
    }
}

impl std::ops::Deref for NodeKeyHandle {
    type Target = dyn NodeKey;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for NodeKeyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKeyHandle")
    }
}

impl PartialEq for NodeKeyHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NodeKeyHandle {}

/// The node's key signing as `user`.
pub struct NodeSigner<'a> {
    user: &'a str,
    key: &'a NodeKeyHandle,
}

impl Signer for NodeSigner<'_> {
    fn user(&self) -> &str {
        self.user
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.key.sign(message)
    }
}
