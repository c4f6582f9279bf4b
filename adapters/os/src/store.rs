//! The node's app store, seen from the host: [`StoreThread`] carries out `Output::Store`
//! operations on one thread of its own, in the order asked, so an fsync never blocks the event
//! loop, and reports each with `Input::Stored` through the [`Inbox`]; [`restore_inputs`] turns
//! what the store holds into the inputs that recreate apps and jobs at start. This module also
//! owns the mapping between the core's types and `cocaine_store`'s.

use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;
use cocaine_core::node::{Input, ScheduledJob, StoreDone, StoreError, StoreOp, StoredApp};
use cocaine_store::Store;

use crate::boundary::store_error;
use crate::inbox::Inbox;

/// What `Input::Stored` says when the node has no store.
pub const NO_STORE: &str = "this node runs without a store";

/// One thread that owns the store and carries out operations one after another.
///
/// Dropping it lets the operations already asked for finish, then joins the thread: a
/// shutdown never cuts a write short.
pub struct StoreThread {
    ops: Option<mpsc::Sender<(u64, StoreOp)>>,
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Starts the thread; each result goes to `inbox` as `Input::Stored`.
    pub fn spawn(store: Store, inbox: Inbox) -> std::io::Result<StoreThread> {
        let (ops, queue) = mpsc::channel::<(u64, StoreOp)>();
        let thread = std::thread::Builder::new()
            .name("cocaine-store".to_owned())
            .spawn(move || {
                for (token, op) in queue {
                    let result = execute(&store, op);
                    inbox.push(Input::Stored { token, result });
                }
            })?;
        Ok(StoreThread {
            ops: Some(ops),
            thread: Some(thread),
        })
    }

    /// Queues `op`; its result comes back through the inbox with `token`. If the thread is
    /// gone (it panicked), says so as the error.
    pub fn submit(&self, token: u64, op: StoreOp) -> Result<(), String> {
        let ops = self.ops.as_ref().expect("set until drop");
        ops.send((token, op))
            .map_err(|_| "the store thread has stopped".to_owned())
    }
}

impl Drop for StoreThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is empty.
        self.ops = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Carries out one operation; the error names the operation, the app or job, and the cause
/// (which names the path).
pub fn execute(store: &Store, op: StoreOp) -> Result<StoreDone, StoreError> {
    match op {
        StoreOp::PutApp {
            app,
            manifest_json,
            package,
        } => match crate::code_check::missing_code(&app, &manifest_json, package.as_deref()) {
            Some(missing) => Err(StoreError::MissingCode(format!("app {app:?}: {missing}"))),
            None => put_app(store, app, manifest_json, package),
        },
        StoreOp::Revert { app, to, from } => store
            .revert(&app, to, from)
            .map(|()| StoreDone::default())
            .map_err(|e| {
                let message = format!(
                    "cannot revert app {app:?} from revision {from} to {to} in the store: {e}"
                );
                store_error(&e, message)
            }),
        StoreOp::DropRevision { app, revision } => store
            .drop_revision(&app, revision)
            .map(|_| StoreDone::default())
            .map_err(|e| {
                let message =
                    format!("cannot drop revision {revision} of app {app:?} from the store: {e}");
                store_error(&e, message)
            }),
        StoreOp::DeleteApp { app } => store
            .delete_app(&app)
            .map(|_| StoreDone::default())
            .map_err(|e| store_error(&e, format!("cannot delete app {app:?} from the store: {e}"))),
        StoreOp::SetStopped { app, stopped } => store
            .set_stopped(&app, stopped)
            .map(|()| StoreDone::default())
            .map_err(|e| {
                let what = if stopped { "stopped" } else { "running" };
                store_error(
                    &e,
                    format!("cannot mark app {app:?} {what} in the store: {e}"),
                )
            }),
        StoreOp::PutJob(job) => {
            let id = job.id.clone();
            store
                .put_job(&to_store_job(job))
                .map(|()| StoreDone::default())
                .map_err(|e| store_error(&e, format!("cannot store scheduled job {id:?}: {e}")))
        }
        StoreOp::DeleteJob { id } => {
            store
                .delete_job(&id)
                .map(|_| StoreDone::default())
                .map_err(|e| {
                    store_error(
                        &e,
                        format!("cannot delete scheduled job {id:?} from the store: {e}"),
                    )
                })
        }
        StoreOp::PutTombstone { app, record } => store
            .put_tombstone(&app, &record)
            .map(|()| StoreDone::default())
            .map_err(|e| store_error(&e, format!("cannot store the tombstone of {app:?}: {e}"))),
    }
}

fn put_app(
    store: &Store,
    app: String,
    manifest_json: Bytes,
    package: Option<Bytes>,
) -> Result<StoreDone, StoreError> {
    store
        .put_app(&app, &manifest_json, package.as_deref())
        .map(|put| StoreDone {
            package_dir: put.package_dir,
            revision: Some(put.revision),
        })
        .map_err(|e| store_error(&e, format!("cannot store app {app:?}: {e}")))
}

/// The inputs that bring back what `store` holds: one `Input::RestoreTombstone` per
/// replicated app deleted (first, so a deleted version is never started again), one
/// `Input::Restore` per stored app (by name), then one `Input::RestoreJob` per stored job
/// (by id). An app or job that cannot be
/// read is its own error input, so the node reports it and goes on. Fails only when the list
/// of apps itself cannot be read.
pub fn restore_inputs(store: &Store) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    for (app, record) in store.load_tombstones() {
        inputs.push(Input::RestoreTombstone {
            record: record
                .map(Bytes::from)
                .map_err(|e| format!("cannot read the tombstone of {app:?}: {e}")),
            app,
        });
    }
    for (app, stored) in store.load_apps() {
        match stored {
            // The store's way to say the apps folder itself is unreadable.
            Err(e) if app.is_empty() => return Err(format!("cannot list the stored apps: {e}")),
            stored => inputs.push(Input::Restore {
                stored: stored
                    .map(from_store_app)
                    .map_err(|e| format!("cannot read stored app {app:?}: {e}")),
                app,
            }),
        }
    }
    for job in store.load_jobs() {
        inputs.push(Input::RestoreJob {
            job: job
                .map(from_store_job)
                .map_err(|e| format!("cannot read a scheduled job: {e}")),
        });
    }
    Ok(inputs)
}

pub fn from_store_app(app: cocaine_store::StoredApp) -> StoredApp {
    StoredApp {
        manifest_json: Bytes::from(app.manifest_json),
        package_dir: app.package_dir,
        revision: app.revision,
        stopped: app.stopped,
        package: app.package_tar.map(Bytes::from),
    }
}

pub fn from_store_job(job: cocaine_store::ScheduledJob) -> ScheduledJob {
    ScheduledJob {
        id: job.id,
        app: job.app,
        task: job.task,
        at_unix_ms: job.at_unix_ms,
        body: Bytes::from(job.body),
    }
}

pub fn to_store_job(job: ScheduledJob) -> cocaine_store::ScheduledJob {
    cocaine_store::ScheduledJob {
        id: job.id,
        app: job.app,
        task: job.task,
        at_unix_ms: job.at_unix_ms,
        body: job.body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::inbox::tests::wait;

    fn job(id: &str, body: &'static [u8]) -> ScheduledJob {
        ScheduledJob {
            id: id.to_owned(),
            app: "echo".to_owned(),
            task: "later".to_owned(),
            at_unix_ms: 1_700_000_000_000,
            body: Bytes::from_static(body),
        }
    }

    /// Collects `Input::Stored` results from `inbox` until `n` came or 10 s passed.
    fn stored(inbox: &Inbox, n: usize) -> Vec<(u64, Result<StoreDone, StoreError>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            for input in wait(inbox, deadline) {
                match input {
                    Input::Stored { token, result } => got.push((token, result)),
                    other => panic!("unexpected input {other:?}"),
                }
            }
        }
        assert_eq!(got.len(), n, "results: {got:?}");
        got
    }

    fn put(app: &str, manifest: &'static [u8]) -> StoreOp {
        StoreOp::PutApp {
            app: app.into(),
            manifest_json: Bytes::from_static(manifest),
            package: None,
        }
    }

    fn revision(revision: u64) -> Result<StoreDone, StoreError> {
        Ok(StoreDone {
            package_dir: None,
            revision: Some(revision),
        })
    }

    #[test]
    fn operations_run_in_order_and_each_result_comes_back_with_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let inbox = Inbox::new().unwrap();
        let thread = StoreThread::spawn(store.clone(), inbox.clone()).unwrap();
        let ops = [
            (put("echo", b"{\"v\": 1}"), revision(1)),
            // A new revision: only order makes the second manifest the current one.
            (put("echo", b"{\"v\": 2}"), revision(2)),
            (put("echo", b"{\"v\": 3}"), revision(3)),
            // The version of revision 3 failed to start: revision 2 is current again.
            (
                StoreOp::Revert {
                    app: "echo".into(),
                    to: 2,
                    from: 3,
                },
                Ok(StoreDone::default()),
            ),
            // The version of revision 1 has left.
            (
                StoreOp::DropRevision {
                    app: "echo".into(),
                    revision: 1,
                },
                Ok(StoreDone::default()),
            ),
            // The current one is kept.
            (
                StoreOp::DropRevision {
                    app: "echo".into(),
                    revision: 2,
                },
                Ok(StoreDone::default()),
            ),
            (
                StoreOp::PutJob(job("j1", b"\x00body")),
                Ok(StoreDone::default()),
            ),
            (StoreOp::PutJob(job("j2", b"")), Ok(StoreDone::default())),
            (
                StoreOp::DeleteJob { id: "j2".into() },
                Ok(StoreDone::default()),
            ),
            (put("gone", b"{}"), revision(1)),
            (
                StoreOp::DeleteApp { app: "gone".into() },
                Ok(StoreDone::default()),
            ),
        ];
        let n = ops.len();
        let mut expected = Vec::new();
        for (token, (op, result)) in ops.into_iter().enumerate() {
            thread.submit(token as u64 + 100, op).unwrap();
            expected.push((token as u64 + 100, result));
        }
        assert_eq!(stored(&inbox, n), expected);
        drop(thread);

        let restored = restore_inputs(&store).unwrap();
        assert_eq!(restored.len(), 2, "{restored:?}");
        match &restored[0] {
            Input::Restore {
                app,
                stored: Ok(stored),
            } => {
                assert_eq!(app, "echo");
                assert_eq!(&stored.manifest_json[..], b"{\"v\": 2}");
                assert_eq!(stored.package_dir, None);
                assert_eq!(stored.revision, 2);
            }
            other => panic!("{other:?}"),
        }
        match &restored[1] {
            Input::RestoreJob { job: Ok(j) } => assert_eq!(j, &job("j1", b"\x00body")),
            other => panic!("{other:?}"),
        }
        // Only the current revision is left of "echo".
        assert!(store.revision_dir("echo", 2).is_dir());
        for gone in [1, 3] {
            assert!(
                !store.revision_dir("echo", gone).exists(),
                "revision {gone}"
            );
        }
    }

    #[test]
    fn a_package_is_unpacked_and_its_folder_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "app.py", &b"print"[..])
            .unwrap();
        let package = Bytes::from(tar.into_inner().unwrap());
        let package_2 = package.clone();
        let inbox = Inbox::new().unwrap();
        let thread = StoreThread::spawn(store.clone(), inbox.clone()).unwrap();
        thread
            .submit(
                1,
                StoreOp::PutApp {
                    app: "py".into(),
                    manifest_json: Bytes::from_static(b"{}"),
                    package: Some(package_2),
                },
            )
            .unwrap();
        thread
            .submit(
                2,
                StoreOp::PutApp {
                    app: "py".into(),
                    manifest_json: Bytes::from_static(b"{}"),
                    package: Some(package),
                },
            )
            .unwrap();
        let got = stored(&inbox, 2);
        let first = got[0].1.clone().unwrap();
        let second = got[1].1.clone().unwrap();
        assert_eq!(first.revision, Some(1));
        assert_eq!(second.revision, Some(2));
        // Each revision has its own folder: the first one's files stay for its version.
        let package_dir = first.package_dir.unwrap();
        assert_eq!(package_dir, store.revision_dir("py", 1).join("package"));
        assert_eq!(
            second.package_dir.unwrap(),
            store.revision_dir("py", 2).join("package")
        );
        assert_eq!(std::fs::read(package_dir.join("app.py")).unwrap(), b"print");
        drop(thread);
        match &restore_inputs(&store).unwrap()[..] {
            [Input::Restore {
                stored: Ok(stored), ..
            }] => {
                assert_eq!(stored.revision, 2);
                assert_eq!(
                    stored.package_dir.as_deref(),
                    Some(store.revision_dir("py", 2).join("package").as_path())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failures_come_back_as_readable_errors_and_later_operations_still_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let inbox = Inbox::new().unwrap();
        let thread = StoreThread::spawn(store, inbox.clone()).unwrap();
        thread
            .submit(
                1,
                StoreOp::PutApp {
                    app: "bad".into(),
                    manifest_json: Bytes::from_static(b"not json"),
                    package: None,
                },
            )
            .unwrap();
        thread
            .submit(2, StoreOp::PutJob(job("../escape", b"")))
            .unwrap();
        thread
            .submit(
                3,
                StoreOp::DeleteApp {
                    app: "never-stored".into(),
                },
            )
            .unwrap();
        thread.submit(4, put("kept", b"{}")).unwrap();
        thread
            .submit(
                5,
                StoreOp::Revert {
                    app: "kept".into(),
                    to: 7,
                    from: 1,
                },
            )
            .unwrap();
        let got = stored(&inbox, 5);
        let first = got[0].1.clone().unwrap_err().to_string();
        assert!(
            first.starts_with("cannot store app \"bad\": corrupt "),
            "{first}"
        );
        assert!(first.contains("manifest.json"), "{first}");
        let second = got[1].1.clone().unwrap_err().to_string();
        assert!(
            second.starts_with("cannot store scheduled job \"../escape\": invalid name"),
            "{second}"
        );
        assert_eq!(got[2], (3, Ok(StoreDone::default())));
        assert_eq!(got[3], (4, revision(1)));
        let revert = got[4].1.clone().unwrap_err().to_string();
        assert!(
            revert.starts_with(
                "cannot revert app \"kept\" from revision 1 to 7 in the store: revision 7"
            ),
            "{revert}"
        );
        assert!(revert.contains("r7"), "{revert}");
    }

    #[test]
    fn unreadable_stored_apps_and_jobs_become_error_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::create_dir(store.app_dir("broken")).unwrap();
        std::fs::write(dir.path().join("schedule/j.json"), b"{").unwrap();
        let inputs = restore_inputs(&store).unwrap();
        match &inputs[..] {
            [Input::Restore {
                app,
                stored: Err(app_error),
            }, Input::RestoreJob {
                job: Err(job_error),
            }] => {
                assert_eq!(app, "broken");
                assert!(
                    app_error.starts_with("cannot read stored app \"broken\": corrupt "),
                    "{app_error}"
                );
                assert!(app_error.contains("no current file"), "{app_error}");
                assert!(
                    job_error.starts_with("cannot read a scheduled job: corrupt "),
                    "{job_error}"
                );
                assert!(job_error.contains("j.json"), "{job_error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tombstones_are_stored_and_come_back_first_with_the_package_of_each_app() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, "a.txt", &b"hi"[..])
                .unwrap();
            builder.into_inner().unwrap()
        };
        execute(
            &store,
            StoreOp::PutApp {
                app: "web".into(),
                manifest_json: Bytes::from_static(b"{}"),
                package: Some(Bytes::from(tar.clone())),
            },
        )
        .unwrap();
        let record = Bytes::from_static(br#"{"app":"echo","version":2,"deleted_at":1}"#);
        let put = StoreOp::PutTombstone {
            app: "echo".into(),
            record: record.clone(),
        };
        assert_eq!(execute(&store, put), Ok(StoreDone::default()));
        let bad = StoreOp::PutTombstone {
            app: "../x".into(),
            record: record.clone(),
        };
        assert!(execute(&store, bad).is_err());

        let inputs = restore_inputs(&store).unwrap();
        match &inputs[..] {
            [Input::RestoreTombstone {
                app,
                record: Ok(read),
            }, Input::Restore {
                app: web,
                stored: Ok(stored),
            }] => {
                assert_eq!((app.as_str(), read), ("echo", &record));
                assert_eq!(web, "web");
                assert_eq!(stored.package.as_deref(), Some(tar.as_slice()));
            }
            other => panic!("{other:?}"),
        }
    }
}
