use std::fs;
use std::path::Path;

use cocaine_store::{default_root_for, ScheduledJob, Store, StoreError};
use tar::{EntryType, Header};

const MANIFEST: &[u8] =
    br#"{"type": "binary", "args": "local://app", "tasks": {"echo": {"type": "native"}}}"#;

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An archive with one entry written byte by byte, bypassing the tar crate's own path checks.
fn raw_tar(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk(&p, base, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn put_load_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tar = tar_of(&[("bin/worker", b"#!/bin/sh\n"), ("data.txt", b"hello")]);
    let put = store.put_app("echo", MANIFEST, Some(&tar)).unwrap();
    assert_eq!(put.revision, 1);
    let package = put.package_dir.unwrap();
    assert_eq!(package, store.app_dir("echo").join("r1/package"));
    assert_eq!(fs::read(package.join("data.txt")).unwrap(), b"hello");
    assert_eq!(
        fs::metadata(package.join("bin/worker"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0o111
    );
    let plain = store.put_app("plain", MANIFEST, None).unwrap();
    assert_eq!((plain.revision, plain.package_dir), (1, None));

    // A second open (a node restart) sees both.
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let apps = store.load_apps();
    assert_eq!(apps.len(), 2);
    let (name, echo) = &apps[0];
    assert_eq!(name, "echo");
    let echo = echo.as_ref().unwrap();
    assert_eq!(echo.manifest_json, MANIFEST);
    assert_eq!(echo.package_dir.as_deref(), Some(package.as_path()));
    assert_eq!(echo.revision, 1);
    assert_eq!(echo.package_tar.as_deref(), Some(tar.as_slice()));
    let (name, plain) = &apps[1];
    assert_eq!(name, "plain");
    assert_eq!(plain.as_ref().unwrap().package_dir, None);
    assert_eq!(plain.as_ref().unwrap().revision, 1);
    assert_eq!(plain.as_ref().unwrap().package_tar, None);

    assert!(store.delete_app("echo").unwrap());
    assert!(!store.delete_app("echo").unwrap());
    assert!(!store.app_dir("echo").exists());
    assert_eq!(store.load_apps().len(), 1);
}

use std::os::unix::fs::PermissionsExt;

/// The current revision of `app`, as `load_apps` gives it.
fn current(store: &Store, app: &str) -> cocaine_store::StoredApp {
    let apps = store.load_apps();
    let (_, stored) = apps.into_iter().find(|(name, _)| name == app).unwrap();
    stored.unwrap()
}

#[test]
fn a_put_adds_a_revision_and_keeps_the_old_one_until_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let first = tar_of(&[("old.txt", b"1"), ("dir/keep.txt", b"1")]);
    let second = tar_of(&[("new.txt", b"2")]);
    let r1 = store.put_app("app", MANIFEST, Some(&first)).unwrap();
    let v2 = br#"{"version": 2}"#;
    let r2 = store.put_app("app", v2, Some(&second)).unwrap();
    assert!(r2.revision > r1.revision, "{r1:?} {r2:?}");
    let package = r2.package_dir.unwrap();
    assert_eq!(snapshot(&package), vec!["new.txt"]);
    // The old revision is untouched: its version may still be running, spawning workers.
    let old_package = r1.package_dir.unwrap();
    assert_eq!(fs::read(old_package.join("dir/keep.txt")).unwrap(), b"1");
    let stored = current(&store, "app");
    assert_eq!(stored.manifest_json, v2);
    assert_eq!(stored.revision, r2.revision);
    assert_eq!(stored.package_dir.as_ref(), Some(&package));

    // Dropping the current revision does nothing; dropping the old one removes its files.
    assert!(!store.drop_revision("app", r2.revision).unwrap());
    assert_eq!(current(&store, "app"), stored);
    assert!(store.drop_revision("app", r1.revision).unwrap());
    assert!(!store.drop_revision("app", r1.revision).unwrap());
    assert!(!store.drop_revision("app", 77).unwrap());
    assert!(!store.drop_revision("never-stored", 1).unwrap());
    assert_eq!(
        snapshot(&store.app_dir("app")),
        vec![
            "current",
            "r2",
            "r2/manifest.json",
            "r2/package",
            "r2/package.tar",
            "r2/package/new.txt"
        ]
    );
    assert_eq!(current(&store, "app"), stored);

    // A revision without a package has none, and the one before keeps its own.
    let r3 = store.put_app("app", MANIFEST, None).unwrap();
    assert_eq!(r3.package_dir, None);
    assert_eq!(current(&store, "app").package_dir, None);
    assert_eq!(snapshot(&package), vec!["new.txt"]);
}

#[test]
fn revert_makes_the_old_revision_current_again() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let r1 = store
        .put_app("app", MANIFEST, Some(&tar_of(&[("v", b"1")])))
        .unwrap();
    let refused = br#"{"refused": true}"#;
    let r2 = store
        .put_app("app", refused, Some(&tar_of(&[("v", b"2")])))
        .unwrap();
    assert_eq!(current(&store, "app").revision, r2.revision);

    store.revert("app", r1.revision, r2.revision).unwrap();
    let stored = current(&store, "app");
    assert_eq!(stored.revision, r1.revision);
    assert_eq!(stored.manifest_json, MANIFEST);
    assert_eq!(stored.package_dir, r1.package_dir);
    assert_eq!(
        fs::read(stored.package_dir.unwrap().join("v")).unwrap(),
        b"1"
    );
    assert!(!store.revision_dir("app", r2.revision).exists());
    // A restart finds the old one too.
    let restarted = Store::open(tmp.path()).unwrap();
    assert_eq!(current(&restarted, "app").revision, r1.revision);
    // Idempotent.
    store.revert("app", r1.revision, r2.revision).unwrap();
    assert_eq!(current(&store, "app").revision, r1.revision);
    // The next revision of this run never reuses the reverted one's number.
    let r3 = store.put_app("app", MANIFEST, None).unwrap();
    assert!(r3.revision > r2.revision, "{r3:?}");
}

#[test]
fn revert_after_a_later_put_only_removes_the_failed_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let r1 = store.put_app("app", MANIFEST, None).unwrap().revision;
    let r2 = store.put_app("app", br#"{"v": 2}"#, None).unwrap().revision;
    let r3 = store.put_app("app", br#"{"v": 3}"#, None).unwrap().revision;
    // The version of r2 failed after r3 was deployed: r3 stays current.
    store.revert("app", r1, r2).unwrap();
    assert_eq!(current(&store, "app").revision, r3);
    assert!(!store.revision_dir("app", r2).exists());
    assert!(store.revision_dir("app", r1).exists());
    // Reverting a deleted app is fine.
    store.delete_app("app").unwrap();
    store.revert("app", r1, r3).unwrap();
    assert!(!store.app_dir("app").exists());
}

#[test]
fn revert_to_a_missing_revision_keeps_the_current_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let r1 = store.put_app("app", MANIFEST, None).unwrap().revision;
    let r2 = store.put_app("app", br#"{"v": 2}"#, None).unwrap().revision;
    assert!(store.drop_revision("app", r1).unwrap());
    let err = store.revert("app", r1, r2).unwrap_err();
    assert!(
        matches!(err, StoreError::MissingRevision { revision, .. } if revision == r1),
        "{err}"
    );
    // Removing r2 would leave nothing to restart: it stays, and stays current.
    let stored = current(&store, "app");
    assert_eq!(
        (stored.revision, &stored.manifest_json[..]),
        (r2, &br#"{"v": 2}"#[..])
    );
}

#[test]
fn delete_removes_every_revision_and_numbers_are_not_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = tar_of(&[("a", b"a")]);
    let r1 = store.put_app("app", MANIFEST, Some(&tar)).unwrap().revision;
    let r2 = store.put_app("app", MANIFEST, Some(&tar)).unwrap().revision;
    assert!(store.delete_app("app").unwrap());
    assert!(!store.app_dir("app").exists());
    assert_eq!(snapshot(&tmp.path().join("apps")), Vec::<String>::new());
    // The version of r1 or r2 may still be leaving, to be dropped by number: a redeploy in the
    // same run gets a number of its own.
    let r3 = store.put_app("app", MANIFEST, Some(&tar)).unwrap().revision;
    assert!(r3 > r2 && r2 > r1, "{r1} {r2} {r3}");
    assert!(!store.drop_revision("app", r1).unwrap());
    assert!(!store.drop_revision("app", r2).unwrap());
    assert_eq!(current(&store, "app").revision, r3);
}

#[test]
fn new_numbers_are_above_every_revision_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.put_app("app", MANIFEST, None).unwrap();
    // A revision left by someone else (or a newer node), with a number this run never gave.
    let r9 = store.revision_dir("app", 9);
    fs::create_dir(&r9).unwrap();
    fs::write(r9.join("manifest.json"), b"{}").unwrap();
    let next = store.put_app("app", MANIFEST, None).unwrap().revision;
    assert_eq!(next, 10);
    // A fresh process (no memory of what it handed out) still counts from the disk.
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.put_app("app", MANIFEST, None).unwrap().revision, 11);
}

#[test]
fn open_sweeps_revisions_that_are_not_current() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = tar_of(&[("a", b"a")]);
    store.put_app("app", MANIFEST, Some(&tar)).unwrap();
    let r2 = store.put_app("app", MANIFEST, Some(&tar)).unwrap().revision;
    // A crash after a revision was renamed into place but before `current` was switched.
    let r3 = store.revision_dir("app", r2 + 1);
    fs::create_dir(&r3).unwrap();
    fs::write(r3.join("manifest.json"), b"{}").unwrap();
    // And one while a revision was being built.
    fs::create_dir(store.app_dir("app").join(".rev-1-0")).unwrap();

    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        snapshot(&store.app_dir("app")),
        vec![
            "current",
            "r2",
            "r2/manifest.json",
            "r2/package",
            "r2/package.tar",
            "r2/package/a"
        ]
    );
    assert_eq!(current(&store, "app").revision, r2);
}

#[test]
fn open_keeps_every_revision_of_an_app_whose_current_one_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.put_app("app", MANIFEST, None).unwrap();
    store.put_app("app", MANIFEST, None).unwrap();
    fs::write(store.app_dir("app").join("current"), b"seven\n").unwrap();
    let before = snapshot(&store.app_dir("app"));
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(snapshot(&store.app_dir("app")), before);
    let err = store.load_apps().remove(0).1.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("app/current"), "{err}");
    assert!(err.to_string().contains("not a revision number"), "{err}");
    // Neither a drop nor a revert guesses which revision is current.
    assert!(store.drop_revision("app", 1).is_err());
    assert!(store.revert("app", 1, 2).is_err());
    assert_eq!(snapshot(&store.app_dir("app")), before);
    // A deploy repairs it.
    let r = store.put_app("app", MANIFEST, None).unwrap().revision;
    assert_eq!(r, 3);
    assert_eq!(current(&store, "app").revision, 3);
}

#[test]
fn an_app_in_the_layout_before_revisions_is_revision_0() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let app = store.app_dir("old");
    fs::create_dir_all(app.join("package")).unwrap();
    fs::write(app.join("manifest.json"), MANIFEST).unwrap();
    fs::write(app.join("package/a"), b"a").unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let stored = current(&store, "old");
    assert_eq!(stored.revision, 0);
    assert_eq!(stored.package_dir, Some(app.join("package")));

    // A redeploy adds revision 1 beside it; a revert goes back to it.
    let r1 = store.put_app("old", br#"{"v": 1}"#, None).unwrap().revision;
    assert_eq!(r1, 1);
    assert_eq!(current(&store, "old").revision, 1);
    store.revert("old", 0, 1).unwrap();
    assert_eq!(current(&store, "old"), stored);
    // Once a later revision is current and revision 0 dropped, the old files go.
    store.put_app("old", br#"{"v": 2}"#, None).unwrap();
    assert!(store.drop_revision("old", 0).unwrap());
    assert_eq!(snapshot(&app), vec!["current", "r2", "r2/manifest.json"]);
}

#[test]
fn hostile_archives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let good = tar_of(&[("ok.txt", b"ok")]);
    store.put_app("app", MANIFEST, Some(&good)).unwrap();
    let before_parent = snapshot(tmp.path());

    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            raw_tar(&[("../escape", EntryType::Regular, "", b"x")]),
        ),
        (
            "deep dot-dot",
            raw_tar(&[("a/../../../escape", EntryType::Regular, "", b"x")]),
        ),
        (
            "absolute",
            raw_tar(&[("/tmp/abs-escape", EntryType::Regular, "", b"x")]),
        ),
        (
            "symlink to /etc",
            raw_tar(&[("etc", EntryType::Symlink, "/etc", b"")]),
        ),
        (
            "symlink up",
            raw_tar(&[("a/up", EntryType::Symlink, "../..", b"")]),
        ),
        (
            "write through a symlink",
            raw_tar(&[
                ("link", EntryType::Symlink, ".", b""),
                ("link/x", EntryType::Regular, "", b"x"),
            ]),
        ),
        (
            "symlink chain",
            raw_tar(&[
                ("s", EntryType::Symlink, ".", b""),
                ("x", EntryType::Symlink, "s/..", b""),
            ]),
        ),
        (
            "hard link outside",
            raw_tar(&[("h", EntryType::Link, "../../../etc/passwd", b"")]),
        ),
        (
            "hard link absolute",
            raw_tar(&[("h", EntryType::Link, "/etc/passwd", b"")]),
        ),
        ("device", raw_tar(&[("dev", EntryType::Char, "", b"")])),
        ("fifo", raw_tar(&[("fifo", EntryType::Fifo, "", b"")])),
    ];
    for (what, tar) in &hostile {
        let err = store.put_app("app", br#"{"v": 2}"#, Some(tar)).unwrap_err();
        assert!(
            matches!(err, StoreError::UnsafeEntry { .. }),
            "{what}: {err}"
        );
        // The app is as it was; nothing was written outside the store.
        let apps = store.load_apps();
        let stored = apps[0].1.as_ref().unwrap();
        assert_eq!(stored.manifest_json, MANIFEST, "{what}");
        assert_eq!(
            snapshot(stored.package_dir.as_ref().unwrap()),
            vec!["ok.txt"]
        );
        assert_eq!(snapshot(tmp.path()), before_parent, "{what}");
    }
    assert!(!Path::new("/tmp/abs-escape").exists());
    // Garbage is an archive error, not a panic.
    let err = store
        .put_app("app", MANIFEST, Some(&[1u8; 700]))
        .unwrap_err();
    assert!(matches!(err, StoreError::Archive { .. }), "{err}");
}

#[test]
fn links_inside_the_package_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = raw_tar(&[
        ("lib/", EntryType::Directory, "", b""),
        ("lib/real.so", EntryType::Regular, "", b"elf"),
        ("lib/alias.so", EntryType::Symlink, "real.so", b""),
        ("bin/up", EntryType::Symlink, "../lib/real.so", b""),
        ("hard.so", EntryType::Link, "lib/real.so", b""),
    ]);
    let package = store
        .put_app("app", MANIFEST, Some(&tar))
        .unwrap()
        .package_dir
        .unwrap();
    assert_eq!(fs::read(package.join("lib/alias.so")).unwrap(), b"elf");
    assert_eq!(fs::read(package.join("bin/up")).unwrap(), b"elf");
    assert_eq!(fs::read(package.join("hard.so")).unwrap(), b"elf");
}

#[test]
fn a_corrupt_manifest_fails_only_its_app() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    for app in ["a", "b", "c", "d"] {
        store.put_app(app, MANIFEST, None).unwrap();
    }
    fs::write(
        store.revision_dir("b", 1).join("manifest.json"),
        b"{\"type\": ",
    )
    .unwrap();
    fs::remove_file(store.revision_dir("c", 1).join("manifest.json")).unwrap();
    let apps = store.load_apps();
    let names: Vec<_> = apps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert!(apps[0].1.is_ok());
    assert!(matches!(apps[1].1, Err(StoreError::Corrupt { .. })));
    assert!(matches!(apps[2].1, Err(StoreError::Io { .. })));
    assert!(apps[3].1.is_ok());
    // The error names the file.
    let msg = apps[1].1.as_ref().unwrap_err().to_string();
    assert!(msg.contains("b/r1/manifest.json"), "{msg}");
    assert!(msg.contains("not JSON"), "{msg}");
    // A manifest that is not JSON is refused before anything is written.
    assert!(matches!(
        store.put_app("e", b"not json", None),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(!store.app_dir("e").exists());
}

#[test]
fn an_app_folder_that_is_not_a_stored_app_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.put_app("good", MANIFEST, None).unwrap();
    // What the end-to-end suite writes: a corrupt manifest where the layout before revisions
    // kept it, with no `current`.
    let bad = store.app_dir("bad");
    fs::create_dir(&bad).unwrap();
    fs::write(bad.join("manifest.json"), br#"{"type": "python", "args": "#).unwrap();
    fs::create_dir(store.app_dir("empty")).unwrap();
    let missing = store.app_dir("missing");
    fs::create_dir(&missing).unwrap();
    fs::write(missing.join("current"), b"4\n").unwrap();

    let store = Store::open(tmp.path()).unwrap();
    let apps = store.load_apps();
    let names: Vec<_> = apps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bad", "empty", "good", "missing"]);
    let msg = |i: usize| apps[i].1.as_ref().unwrap_err().to_string();
    assert!(
        msg(0).contains("bad/manifest.json") && msg(0).contains("not JSON"),
        "{}",
        msg(0)
    );
    assert!(msg(1).contains("no current file"), "{}", msg(1));
    assert!(apps[2].1.is_ok());
    assert!(msg(3).contains("missing/r4/manifest.json"), "{}", msg(3));
    // Nothing of theirs was swept.
    assert!(bad.join("manifest.json").exists());
    assert!(store.app_dir("empty").exists());
}

#[test]
fn bad_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let long = "a".repeat(65);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        ".hidden",
        "sp ace",
        "é",
        long.as_str(),
    ] {
        let err = store.put_app(name, MANIFEST, None).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidName { .. }),
            "{name:?}: {err}"
        );
        assert!(matches!(
            store.delete_app(name),
            Err(StoreError::InvalidName { .. })
        ));
    }
    for name in ["a", "A-b_c.d", "x.", &"z".repeat(64)] {
        store.put_app(name, MANIFEST, None).unwrap();
    }
    assert_eq!(
        snapshot(tmp.path())
            .iter()
            .filter(|p| !p.contains('/'))
            .count(),
        2
    );
}

fn job(id: &str, at: u64) -> ScheduledJob {
    ScheduledJob {
        id: id.into(),
        app: "echo".into(),
        task: "ping".into(),
        at_unix_ms: at,
        body: vec![0, 1, 2, 255],
    }
}

#[test]
fn jobs_put_load_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.put_job(&job("j2", 2)).unwrap();
    store.put_job(&job("j1", 1)).unwrap();
    store.put_job(&job("j1", 10)).unwrap(); // replaces
    let jobs: Vec<_> = store.load_jobs().into_iter().map(Result::unwrap).collect();
    assert_eq!(jobs, vec![job("j1", 10), job("j2", 2)]);
    let on_disk = fs::read_to_string(tmp.path().join("schedule/j1.json")).unwrap();
    assert!(on_disk.contains("\"AAEC/w==\""), "{on_disk}");

    assert!(store.delete_job("j1").unwrap());
    assert!(!store.delete_job("j1").unwrap());
    assert_eq!(store.load_jobs().len(), 1);
    assert!(matches!(
        store.put_job(&job("../x", 1)),
        Err(StoreError::InvalidName { .. })
    ));

    // A corrupt job and one whose id is not its file name fail alone.
    fs::write(tmp.path().join("schedule/bad.json"), b"{").unwrap();
    let moved = serde_json::to_vec(&job("other", 1)).unwrap();
    fs::write(tmp.path().join("schedule/moved.json"), moved).unwrap();
    let jobs = store.load_jobs();
    assert_eq!(jobs.len(), 3);
    assert!(matches!(jobs[0], Err(StoreError::Corrupt { .. })));
    assert_eq!(jobs[1].as_ref().unwrap(), &job("j2", 2));
    assert!(matches!(jobs[2], Err(StoreError::Corrupt { .. })));
}

#[test]
fn interrupted_writes_leave_the_old_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = Store::open(root).unwrap();
    let tar = tar_of(&[("a.txt", b"a")]);
    store.put_app("app", MANIFEST, Some(&tar)).unwrap();
    store.put_job(&job("j", 1)).unwrap();
    // What a crash mid-write leaves: half-written temporaries beside the real files, a
    // half-unpacked package, a half-deleted app.
    let app = store.app_dir("app");
    fs::write(app.join(".tmp-1-0"), b"{\"trunc").unwrap();
    fs::create_dir(app.join(".package-1-1")).unwrap();
    fs::write(app.join(".package-1-1/half"), b"").unwrap();
    fs::write(root.join("schedule/.tmp-1-2"), b"{").unwrap();
    fs::create_dir(root.join("apps/.deleted-1-3")).unwrap();

    let apps = store.load_apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].1.as_ref().unwrap().manifest_json, MANIFEST);
    assert_eq!(store.load_jobs().len(), 1);
    assert_eq!(store.load_jobs()[0].as_ref().unwrap(), &job("j", 1));

    // Reopening sweeps them.
    let store = Store::open(root).unwrap();
    assert_eq!(
        snapshot(root),
        vec![
            "apps",
            "apps/app",
            "apps/app/current",
            "apps/app/r1",
            "apps/app/r1/manifest.json",
            "apps/app/r1/package",
            "apps/app/r1/package.tar",
            "apps/app/r1/package/a.txt",
            "schedule",
            "schedule/j.json"
        ]
    );
    assert_eq!(store.load_apps().len(), 1);
}

#[test]
fn a_crash_while_creating_an_app_leaves_no_app() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    // A new app is built whole beside the others and appears with one rename.
    let half = tmp.path().join("apps/.app-1-0");
    fs::create_dir_all(half.join("r1")).unwrap();
    fs::write(half.join("r1/manifest.json"), MANIFEST).unwrap();
    assert!(store.load_apps().is_empty());
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(snapshot(&tmp.path().join("apps")), Vec::<String>::new());
    assert!(store.load_apps().is_empty());
}

#[test]
fn default_root() {
    assert_eq!(
        default_root_for(0, None, None),
        Path::new("/var/lib/cocaine")
    );
    assert_eq!(
        default_root_for(1000, Some("/x/state".into()), Some("/home/u".into())),
        Path::new("/x/state/cocaine")
    );
    assert_eq!(
        default_root_for(1000, Some("relative".into()), Some("/home/u".into())),
        Path::new("/home/u/.local/state/cocaine")
    );
    assert!(default_root_for(1000, None, None).ends_with("cocaine-1000"));
    assert!(Store::default_root().to_string_lossy().contains("cocaine"));
}

#[test]
fn long_names_are_checked_too() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let before = snapshot(tmp.path());
    let target = "../../long-escape";
    let gnu = raw_tar(&[
        (
            "././@LongLink",
            EntryType::GNULongName,
            "",
            format!("{target}\0").as_bytes(),
        ),
        ("short", EntryType::Regular, "", b"x"),
    ]);
    let record = format!(" path={target}\n");
    let record = format!("{}{record}", record.len() + 2);
    let pax = raw_tar(&[
        ("pax", EntryType::XHeader, "", record.as_bytes()),
        ("short", EntryType::Regular, "", b"x"),
    ]);
    for tar in [gnu, pax] {
        let err = store.put_app("app", MANIFEST, Some(&tar)).unwrap_err();
        assert!(matches!(err, StoreError::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains("long-escape"), "{err}");
    }
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_later_entry_never_writes_through_an_earlier_one() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tar = raw_tar(&[
        ("target.txt", EntryType::Regular, "", b"orig"),
        ("sym", EntryType::Symlink, "target.txt", b""),
        ("hard", EntryType::Link, "target.txt", b""),
        ("sym", EntryType::Regular, "", b"new via sym"),
        ("hard", EntryType::Regular, "", b"new via hard"),
    ]);
    let package = store
        .put_app("app", MANIFEST, Some(&tar))
        .unwrap()
        .package_dir
        .unwrap();
    assert_eq!(fs::read(package.join("target.txt")).unwrap(), b"orig");
    assert_eq!(fs::read(package.join("sym")).unwrap(), b"new via sym");
    assert_eq!(fs::read(package.join("hard")).unwrap(), b"new via hard");
}

#[test]
fn tombstones_put_replace_load() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    assert!(store.load_tombstones().is_empty());
    store.put_tombstone("echo", br#"{"version":1}"#).unwrap();
    store.put_tombstone("echo", br#"{"version":2}"#).unwrap();
    store.put_tombstone("web", br#"{"version":5}"#).unwrap();
    assert!(store.put_tombstone("bad", b"not json").is_err());
    assert!(store.put_tombstone("../x", b"{}").is_err());
    fs::write(root.join("tombstones/stray.txt"), b"x").unwrap();

    let store = Store::open(&root).unwrap();
    let loaded: Vec<(String, Option<Vec<u8>>)> = store
        .load_tombstones()
        .into_iter()
        .map(|(app, bytes)| (app, bytes.ok()))
        .collect();
    assert_eq!(
        loaded,
        vec![
            ("echo".to_owned(), Some(br#"{"version":2}"#.to_vec())),
            ("stray.txt".to_owned(), None),
            ("web".to_owned(), Some(br#"{"version":5}"#.to_vec())),
        ]
    );
}

#[test]
fn the_layout_is_synced_before_the_first_write_of_each_run_not_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    assert!(
        store.root_unsynced(),
        "a fresh layout waits for the first write"
    );
    // A clone (the store thread's) shares the state: one sync for all.
    let other = store.clone();
    let job = ScheduledJob {
        id: "tick".into(),
        app: "echo".into(),
        task: "t".into(),
        at_unix_ms: 1,
        body: b"b".to_vec(),
    };
    let put = store.put_job(&job);
    assert!(put.is_ok(), "{put:?}");
    assert!(!store.root_unsynced() && !other.root_unsynced());
    // Reopened: the last run may have stopped before its entries reached the disk, so the
    // first write of this run syncs the root again; reading does not.
    let again = Store::open(&root).unwrap();
    assert_eq!(again.load_jobs().len(), 1);
    assert!(again.root_unsynced());
    assert!(again.put_job(&job).is_ok());
    assert!(!again.root_unsynced());
    // A failed sync (the root gone) is retried by the next write.
    let gone = tmp.path().join("gone");
    let fresh = Store::open(&gone).unwrap();
    fs::remove_dir_all(&gone).unwrap();
    assert!(fresh.put_app("echo", MANIFEST, None).is_err());
    assert!(fresh.root_unsynced());
}
