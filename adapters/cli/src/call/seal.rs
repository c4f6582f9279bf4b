//! `cocaine call --seal`: the node's public key the body is sealed for, from `--node-key
//! FILE` (pinned: the safe way) or asked of the node's control endpoint (`pubkey`).

use std::path::Path;
use std::time::Duration;

use crate::identity::Identity;
use crate::manage::{self, CommandError, Target};

/// The node's public key as PEM: read from `file`, or fetched from the control endpoint
/// `node`. It is checked to be an RSA public key the core reads.
pub fn node_key(
    file: Option<&Path>,
    node: &str,
    connect_timeout: Duration,
    identity: &Identity,
) -> Result<Vec<u8>, CommandError> {
    let pem = match file {
        Some(path) => std::fs::read(path)
            .map_err(|e| CommandError::Usage(format!("--node-key {}: {e}", path.display())))?,
        None => {
            let target = Target {
                node: node.to_owned(),
                timeout: None,
                connect_timeout,
                identity: identity.clone(),
            };
            let reply = manage::node_public_key(&target)?;
            let pem = reply.get("pem").and_then(|p| p.as_str()).ok_or_else(|| {
                CommandError::Failed(format!("{node}: the pubkey reply has no pem"))
            })?;
            pem.as_bytes().to_vec()
        }
    };
    cocaine_core::auth::PublicKey::from_pem(&pem)
        .map_err(|e| CommandError::Usage(format!("the node's key: {e}")))?;
    Ok(pem)
}
