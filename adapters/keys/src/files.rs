//! Key files: `NAME.key` (the private key, PKCS#8 PEM, mode 0600, never replaced) and
//! `NAME.pem` (the public key, SubjectPublicKeyInfo PEM), and the node's own pair in its state
//! folder.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{KeyError, PrivateKey, DEFAULT_BITS};

/// The node's key pair files in its state folder.
pub const NODE_KEY: &str = "node.key";
pub const NODE_PUB: &str = "node.pem";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `dir/NAME.key` (0600) and `dir/NAME.pem` (0644). Neither may exist already: a key
/// is never overwritten by accident. Returns both paths.
pub fn write_pair(
    dir: &Path,
    name: &str,
    key: &PrivateKey,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pem"));
    for path in [&private, &public] {
        if path.exists() {
            return Err(KeyError::Refused(format!(
                "{} exists already; remove it first or choose another name",
                path.display()
            )));
        }
    }
    write_new(&private, &key.private_pem()?, 0o600)?;
    write_new(&public, &key.public_pem()?, 0o644)?;
    Ok((private, public))
}

/// Creates `path` with `mode` from the start (no moment where another user could open it)
/// and writes `bytes`, synced.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    // The umask may have narrowed the mode; widen nothing, but make sure it is exact.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Reads a private key file, refusing one that other users may read (as ssh does).
pub fn read_private(path: &Path) -> Result<PrivateKey, KeyError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Refused(format!(
            "{}: a private key other users may read (mode {mode:04o}); chmod 600 it",
            path.display()
        )));
    }
    let pem = fs::read(path).map_err(io(path))?;
    PrivateKey::from_pem(&pem).map_err(|e| match e {
        KeyError::Malformed(why) => KeyError::Malformed(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// The node's key pair in its state folder `dir`: read if there, else made (3072 bits) and
/// written, `node.key` readable by the node's user only. Also (re)writes `node.pem` when it
/// is missing, for operators to copy.
pub fn node_key(dir: &Path) -> Result<PrivateKey, KeyError> {
    let private = dir.join(NODE_KEY);
    let public = dir.join(NODE_PUB);
    let key = if private.exists() {
        read_private(&private)?
    } else {
        let key = PrivateKey::generate(DEFAULT_BITS)?;
        // Written under a temporary name and renamed, so a crash never leaves half a key
        // that the next start would refuse.
        let partial = dir.join(format!("{NODE_KEY}.partial"));
        let _ = fs::remove_file(&partial);
        write_new(&partial, &key.private_pem()?, 0o600)?;
        fs::rename(&partial, &private).map_err(io(&private))?;
        key
    };
    if !public.exists() {
        let partial = dir.join(format!("{NODE_PUB}.partial"));
        let _ = fs::remove_file(&partial);
        write_new(&partial, &key.public_pem()?, 0o644)?;
        fs::rename(&partial, &public).map_err(io(&public))?;
    }
    Ok(key)
}

/// The node's key pair, read or made the first time something needs it (the control action
/// `pubkey`, a signed announcement or `fetch`), not at start: making a 3072-bit key costs about
/// half a second of CPU, which a node that never uses its key should not pay. Shared between
/// threads; callers that arrive while the pair is being made wait for it.
///
/// [`LazyNodeKey::warm`] makes it on a thread of its own, for a node that knows it will need it
/// soon (one that signs its announcements), so the event loop rarely waits.
#[derive(Debug)]
pub struct LazyNodeKey {
    dir: PathBuf,
    key: std::sync::Mutex<Option<PrivateKey>>,
}

impl LazyNodeKey {
    /// A handle on the pair in the state folder `dir`; nothing is read or made yet.
    pub fn new(dir: &Path) -> LazyNodeKey {
        LazyNodeKey {
            dir: dir.to_owned(),
            key: std::sync::Mutex::new(None),
        }
    }

    /// The pair: read from `dir` or made there (see [`node_key`]) on the first call. A failure
    /// is not remembered: the next call tries again.
    pub fn get(&self) -> Result<PrivateKey, KeyError> {
        let mut slot = self
            .key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = slot.as_ref() {
            return Ok(key.clone());
        }
        let key = node_key(&self.dir)?;
        *slot = Some(key.clone());
        Ok(key)
    }

    /// Whether the pair is in memory already.
    pub fn is_ready(&self) -> bool {
        self.key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Reads or makes the pair on a thread of its own; `done` hears how it went.
    pub fn warm(
        self: &std::sync::Arc<Self>,
        done: impl FnOnce(Result<PrivateKey, KeyError>) + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let this = std::sync::Arc::clone(self);
        std::thread::Builder::new()
            .name("node-key".into())
            .spawn(move || done(this.get()))
    }
}

impl cocaine_core::auth::NodeKey for LazyNodeKey {
    fn public_pem(&self) -> Result<String, cocaine_core::auth::SignError> {
        let sign_error = |e: KeyError| cocaine_core::auth::SignError(e.to_string());
        let pem = self
            .get()
            .map_err(sign_error)?
            .public_pem()
            .map_err(sign_error)?;
        String::from_utf8(pem).map_err(|e| cocaine_core::auth::SignError(e.to_string()))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, cocaine_core::auth::SignError> {
        let sign_error = |e: KeyError| cocaine_core::auth::SignError(e.to_string());
        self.get()
            .map_err(sign_error)?
            .sign(message)
            .map_err(sign_error)
    }
}
