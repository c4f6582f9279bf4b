//! `--user NAME --key FILE`: who signs the requests a command sends (docs/security.md). The
//! key is the user's private key as `cocaine keygen` writes it (PEM, mode 0600); the node
//! knows the user by `<NAME>.pem` in its key folder. `COCAINE_USER` and `COCAINE_KEY` stand in
//! for the flags.

use std::path::PathBuf;

use clap::Args;
use cocaine_keys::UserKey;

#[derive(Debug, Clone, Args)]
pub struct Identity {
    /// Sign requests as this user (the node has their public key as `<NAME>.pem`).
    #[arg(long, env = "COCAINE_USER", value_name = "NAME", requires = "key")]
    pub user: Option<String>,
    /// The user's private key (PEM, readable by its owner only), for --user.
    #[arg(long, env = "COCAINE_KEY", value_name = "FILE", requires = "user")]
    pub key: Option<PathBuf>,
}

impl Identity {
    /// The user's key, when one is given; why not, for the user to fix.
    pub fn load(&self) -> Result<Option<UserKey>, String> {
        match (&self.user, &self.key) {
            (Some(user), Some(key)) => UserKey::read(user, key)
                .map(Some)
                .map_err(|e| format!("--key: {e}")),
            (None, None) => Ok(None),
            (Some(_), None) => Err("--user needs --key FILE (or COCAINE_KEY)".into()),
            (None, Some(_)) => Err("--key needs --user NAME (or COCAINE_USER)".into()),
        }
    }
}
