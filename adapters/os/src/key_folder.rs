//! `cocaine node --keys DIR`: the node's key store is a folder of `<user>.pem` public keys.
//! Every key is read at start (the inputs are in the inbox when [`KeyFolder::start`]
//! returns); then the folder is followed with `notify` and, after a burst of events has calmed
//! down, rescanned and compared with what was seen last by content: a key added or changed is
//! `Input::KeySet`, a key gone is `Input::KeyRemoved`. The node parses the bytes (and keeps a
//! user's old key if the new file does not read), so this module only reads files.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cocaine_core::auth::check_user_name;
use cocaine_core::node::Input;
use cocaine_core::process::LogLevel;
use notify::{Event, EventKind};

use crate::folder::{Followed, LogFn, Rescan, WatchError, DEBOUNCE};
use crate::inbox::Inbox;

/// A key file larger than this is not a public key; it is reported and not read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A followed key folder. Dropping it stops its thread.
pub struct KeyFolder {
    _followed: Followed,
}

impl KeyFolder {
    /// Reads every key in `dir` into `inbox`, then follows the folder on a thread.
    pub fn start(dir: &Path, inbox: Inbox, log: LogFn) -> Result<KeyFolder, WatchError> {
        let followed = Followed::start(dir, "cocaine-keys", DEBOUNCE, |dir| Keys {
            dir,
            seen: BTreeMap::new(),
            inbox,
            log,
        })?;
        Ok(KeyFolder {
            _followed: followed,
        })
    }
}

struct Keys {
    dir: PathBuf,
    /// The content last sent to the node, by user.
    seen: BTreeMap<String, Bytes>,
    inbox: Inbox,
    log: LogFn,
}

impl Rescan for Keys {
    /// Reads of the folder (ours included) change nothing; anything else may.
    fn relevant(&mut self, event: notify::Result<Event>) -> bool {
        !matches!(event, Ok(e) if matches!(e.kind, EventKind::Access(_)))
    }

    fn scan(&mut self) {
        let present = match self.read_all() {
            Ok(present) => present,
            Err(e) => {
                let message = format!("cannot read the key folder {}: {e}", self.dir.display());
                (self.log)(LogLevel::Error, &message);
                return;
            }
        };
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|user| !present.contains_key(*user))
            .cloned()
            .collect();
        for user in gone {
            self.seen.remove(&user);
            self.inbox.push(Input::KeyRemoved { user });
        }
        for (user, pem) in present {
            if self.seen.get(&user) != Some(&pem) {
                self.seen.insert(user.clone(), pem.clone());
                self.inbox.push(Input::KeySet { user, pem });
            }
        }
    }
}

impl Keys {
    /// Every `<user>.pem` file with a valid user name, read.
    fn read_all(&mut self) -> io::Result<BTreeMap<String, Bytes>> {
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(user) = user_of(&path) else {
                continue;
            };
            match read_key(&path) {
                Ok(pem) => {
                    keys.insert(user, pem);
                }
                // Removed since the listing: it is gone.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let message = format!("{}: cannot read: {e}", path.display());
                    (self.log)(LogLevel::Error, &message);
                    // Keep what the node has: an unreadable file is not a removal.
                    if let Some(old) = self.seen.get(&user) {
                        keys.insert(user, old.clone());
                    }
                }
            }
        }
        Ok(keys)
    }
}

fn read_key(path: &Path) -> io::Result<Bytes> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_KEY_FILE {
        return Err(io::Error::other(format!(
            "{size} bytes, over the limit of {MAX_KEY_FILE} for a public key"
        )));
    }
    std::fs::read(path).map(Bytes::from)
}

/// The user a key file is for: `<user>.pem` with a valid user name (not hidden).
fn user_of(path: &Path) -> Option<String> {
    if path.extension()? != "pem" || !path.is_file() {
        return None;
    }
    let user = path.file_stem()?.to_str()?;
    check_user_name(user).ok()?;
    Some(user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const ALICE: &[u8] = include_bytes!("../../../core/tests/data/auth/alice.pem");
    const BOB: &[u8] = include_bytes!("../../../core/tests/data/auth/bob.pem");

    /// Waits for the inbox to hold inputs matching `want`, in order, within 10 s.
    fn wait_for(inbox: &Inbox, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got: Vec<String> = Vec::new();
        loop {
            let mut batch = Vec::new();
            inbox.take(&mut batch);
            got.extend(batch.iter().map(describe));
            if got.len() >= want.len() {
                assert_eq!(got, want);
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "waited for {want:?}, got {got:?}");
            // Wait on the inbox's wake-up descriptor, as the node's loop does.
            let mut fd = libc::pollfd {
                fd: inbox.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd for the duration of the call.
            unsafe { libc::poll(&mut fd, 1, left.as_millis() as libc::c_int) };
        }
    }

    fn describe(input: &Input) -> String {
        match input {
            Input::KeySet { user, pem } => format!("set {user} {}", pem.len()),
            Input::KeyRemoved { user } => format!("removed {user}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn keys_are_read_at_start_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alice.pem"), ALICE).unwrap();
        std::fs::write(dir.path().join(".hidden.pem"), ALICE).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("bad name.pem"), ALICE).unwrap();
        let inbox = Inbox::new().unwrap();
        let folder = KeyFolder::start(dir.path(), inbox.clone(), Box::new(|_, _| {})).unwrap();
        let alice = format!("set alice {}", ALICE.len());
        wait_for(&inbox, &[&alice]);

        std::fs::write(dir.path().join("bob.pem"), BOB).unwrap();
        wait_for(&inbox, &[&format!("set bob {}", BOB.len())]);
        // A replaced key is sent again; an untouched one is not.
        std::fs::write(dir.path().join("alice.pem"), BOB).unwrap();
        wait_for(&inbox, &[&format!("set alice {}", BOB.len())]);
        std::fs::remove_file(dir.path().join("alice.pem")).unwrap();
        wait_for(&inbox, &["removed alice"]);
        drop(folder);
    }

    #[test]
    fn not_a_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let inbox = Inbox::new().unwrap();
        assert!(matches!(
            KeyFolder::start(&file, inbox, Box::new(|_, _| {})),
            Err(WatchError::NotAFolder(_))
        ));
    }
}
