//! The folder watcher of `cocaine node --watch` on a real temporary folder: real files, real
//! inotify events, inputs read from a real inbox. Every wait has a deadline; an expected
//! silence is proven by a later marker event, never by sleeping.

use std::fs;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cocaine_core::node::{AppOrigin, Input};
use cocaine_core::process::LogLevel;
use cocaine_os::folder::{FolderWatcher, WatchError};
use cocaine_os::inbox::Inbox;

const WAIT: Duration = Duration::from_secs(10);

fn manifest(version: u64) -> String {
    format!(
        r#"{{"type": "binary", "args": "local:///bin/true", "version": {version},
            "tasks": {{"tick": {{"type": "recurring-timer", "interval": 1000}}}}}}"#
    )
}

/// What the node would be told, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Deploy(String, u64),
    Remove(String),
}

struct Watched {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    inbox: Inbox,
    logs: mpsc::Receiver<(LogLevel, String)>,
    watcher: Option<FolderWatcher>,
}

impl Watched {
    /// A temporary folder with `files` in it (a name ending in `/` is a folder), watched.
    fn start(files: &[(&str, String)]) -> Watched {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        for (name, content) in files {
            match name.strip_suffix('/') {
                Some(folder) => fs::create_dir(path.join(folder)).unwrap(),
                None => fs::write(path.join(name), content).unwrap(),
            }
        }
        let inbox = Inbox::new().unwrap();
        let (tx, logs) = mpsc::channel();
        let log = Box::new(move |level, message: &str| {
            let _ = tx.send((level, message.to_owned()));
        });
        let watcher = FolderWatcher::start(&path, inbox.clone(), log).unwrap();
        Watched {
            _dir: dir,
            path,
            inbox,
            logs,
            watcher: Some(watcher),
        }
    }

    fn write(&self, name: &str, content: &str) {
        fs::write(self.path.join(name), content).unwrap();
    }

    /// Whatever the inbox holds now.
    fn now(&self) -> Vec<Seen> {
        let mut inputs = Vec::new();
        self.inbox.take(&mut inputs);
        inputs.into_iter().map(seen).collect()
    }

    /// Inputs until one equal to `last` came; fails past the deadline.
    fn until(&self, last: &Seen) -> Vec<Seen> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while !got.contains(last) {
            assert!(
                readable(&self.inbox, deadline),
                "no {last:?} within {WAIT:?}; got {got:?}"
            );
            got.extend(self.now());
        }
        got
    }

    /// Log lines until one of `level` containing `needle`; returns it.
    fn log_until(&self, level: LogLevel, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok((l, message)) if l == level && message.contains(needle) => return message,
                Ok(_) => {}
                Err(e) => panic!("no {level:?} log with {needle:?}: {e}"),
            }
        }
    }

    /// Every log line so far.
    fn logs_now(&self) -> Vec<(LogLevel, String)> {
        self.logs.try_iter().collect()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Stops the thread before the folder goes.
        self.watcher = None;
    }
}

fn seen(input: Input) -> Seen {
    match input {
        Input::Deploy { manifest, origin } => {
            assert_eq!(origin, AppOrigin::Watched);
            Seen::Deploy(manifest.app.clone(), manifest.version)
        }
        Input::Remove { app, origin } => {
            assert_eq!(origin, AppOrigin::Watched);
            Seen::Remove(app)
        }
        other => panic!("the watcher sent {other:?}"),
    }
}

/// Waits until the inbox's descriptor is readable or `deadline` passes.
fn readable(inbox: &Inbox, deadline: Instant) -> bool {
    let mut pfd = libc::pollfd {
        fd: inbox.fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let left = deadline.saturating_duration_since(Instant::now());
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int) > 0 }
}

#[test]
fn at_start_every_visible_manifest_is_deployed_and_other_files_are_not() {
    let w = Watched::start(&[
        ("b.json", manifest(2)),
        ("a.json", manifest(1)),
        (".hidden.json", manifest(1)),
        ("notes.txt", manifest(1)),
        ("a.json~", manifest(1)),
        ("folder.json/", String::new()),
    ]);
    // Deployed before `start` returns, in name order.
    assert_eq!(
        w.now(),
        [Seen::Deploy("a".into(), 1), Seen::Deploy("b".into(), 2)]
    );
    let logs = w.logs_now();
    assert!(
        logs.iter()
            .any(|(l, m)| *l == LogLevel::Info && m.starts_with("watching ")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|(l, m)| *l == LogLevel::Info && m.ends_with("a.json: deploying app a")),
        "{logs:?}"
    );
}

#[test]
fn a_file_written_in_steps_is_deployed_once() {
    let w = Watched::start(&[]);
    assert_eq!(w.now(), []);
    let text = manifest(3);
    let (head, tail) = text.split_at(text.len() / 2);
    let mut file = fs::File::create(w.path.join("app.json")).unwrap();
    file.write_all(head.as_bytes()).unwrap();
    file.flush().unwrap();
    file.write_all(tail.as_bytes()).unwrap();
    drop(file);
    // A marker after the burst: a second deploy of `app`, or one of its half-written
    // content, would come before it.
    w.write("marker.json", &manifest(0));
    let got = w.until(&Seen::Deploy("marker".into(), 0));
    assert_eq!(
        got,
        [
            Seen::Deploy("app".into(), 3),
            Seen::Deploy("marker".into(), 0)
        ]
    );
    let errors: Vec<_> = w
        .logs_now()
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_change_redeploys_and_an_unchanged_rewrite_is_ignored() {
    let w = Watched::start(&[("app.json", manifest(1))]);
    assert_eq!(w.now(), [Seen::Deploy("app".into(), 1)]);

    w.write("app.json", &manifest(1));
    w.write(".hidden.json", &manifest(5));
    w.write("notes.txt", "x");
    w.write("marker.json", &manifest(0));
    assert_eq!(
        w.until(&Seen::Deploy("marker".into(), 0)),
        [Seen::Deploy("marker".into(), 0)]
    );

    w.write("app.json", &manifest(2));
    assert_eq!(
        w.until(&Seen::Deploy("app".into(), 2)),
        [Seen::Deploy("app".into(), 2)]
    );
    w.log_until(LogLevel::Info, "app.json: changed; redeploying app app");
}

#[test]
fn a_bad_manifest_is_reported_with_its_file_and_key_and_the_running_version_is_kept() {
    let w = Watched::start(&[("app.json", manifest(1))]);
    assert_eq!(w.now(), [Seen::Deploy("app".into(), 1)]);

    w.write(
        "app.json",
        r#"{"type": "binary", "args": 5, "tasks": {"t": {"type": "cron"}}}"#,
    );
    let error = w.log_until(LogLevel::Error, "bad manifest");
    let file = w.path.join("app.json");
    assert!(
        error.starts_with(&format!("{}: bad manifest for app app: ", file.display())),
        "{error}"
    );
    assert!(error.contains("args: expected a string"), "{error}");
    assert!(
        error.contains("tasks.t: missing key \"schedule\""),
        "{error}"
    );
    assert!(error.ends_with("the running version is kept"), "{error}");

    w.write("app.json", "{not json");
    let error = w.log_until(LogLevel::Error, "invalid JSON");
    assert!(error.contains("app.json"), "{error}");

    // Back to what runs: nothing to deploy.
    w.write("app.json", &manifest(1));
    w.log_until(LogLevel::Info, "app.json: back to the running version");
    w.write("marker.json", &manifest(0));
    assert_eq!(
        w.until(&Seen::Deploy("marker".into(), 0)),
        [Seen::Deploy("marker".into(), 0)]
    );

    // A bad file never deployed only says so.
    w.write("new.json", "[]");
    let error = w.log_until(LogLevel::Error, "new.json");
    assert!(error.ends_with("not deployed"), "{error}");
}

#[test]
fn a_file_removed_or_renamed_away_removes_its_app() {
    let w = Watched::start(&[("a.json", manifest(1)), ("b.json", manifest(1))]);
    assert_eq!(
        w.now(),
        [Seen::Deploy("a".into(), 1), Seen::Deploy("b".into(), 1)]
    );
    fs::remove_file(w.path.join("a.json")).unwrap();
    assert_eq!(
        w.until(&Seen::Remove("a".into())),
        [Seen::Remove("a".into())]
    );
    w.log_until(LogLevel::Info, "a.json: gone; removing app a");

    fs::rename(w.path.join("b.json"), w.path.join("b.json.off")).unwrap();
    assert_eq!(
        w.until(&Seen::Remove("b".into())),
        [Seen::Remove("b".into())]
    );

    // Renamed back in: deployed again.
    fs::rename(w.path.join("b.json.off"), w.path.join("b.json")).unwrap();
    assert_eq!(
        w.until(&Seen::Deploy("b".into(), 1)),
        [Seen::Deploy("b".into(), 1)]
    );
}

#[test]
fn a_missing_folder_cannot_be_watched() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let inbox = Inbox::new().unwrap();
    let error = FolderWatcher::start(&missing, inbox, Box::new(|_, _| {}))
        .err()
        .expect("a missing folder is an error");
    assert!(matches!(error, WatchError::NotAFolder(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("cannot watch {}: not a folder", missing.display())
    );
}
