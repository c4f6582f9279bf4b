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
    let package = store
        .put_app("echo", MANIFEST, Some(&tar))
        .unwrap()
        .unwrap();
    assert_eq!(package, store.app_dir("echo").join("package"));
    assert_eq!(fs::read(package.join("data.txt")).unwrap(), b"hello");
    assert_eq!(
        fs::metadata(package.join("bin/worker"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0o111
    );
    store.put_app("plain", MANIFEST, None).unwrap();

    // A second open (a node restart) sees both.
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let apps = store.load_apps();
    assert_eq!(apps.len(), 2);
    let (name, echo) = &apps[0];
    assert_eq!(name, "echo");
    let echo = echo.as_ref().unwrap();
    assert_eq!(echo.manifest_json, MANIFEST);
    assert_eq!(echo.package_dir.as_deref(), Some(package.as_path()));
    let (name, plain) = &apps[1];
    assert_eq!(name, "plain");
    assert_eq!(plain.as_ref().unwrap().package_dir, None);

    assert!(store.delete_app("echo").unwrap());
    assert!(!store.delete_app("echo").unwrap());
    assert!(!store.app_dir("echo").exists());
    assert_eq!(store.load_apps().len(), 1);
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn re_put_replaces_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let first = tar_of(&[("old.txt", b"1"), ("dir/keep.txt", b"1")]);
    let second = tar_of(&[("new.txt", b"2")]);
    store.put_app("app", MANIFEST, Some(&first)).unwrap();
    let v2 = br#"{"version": 2}"#;
    let package = store.put_app("app", v2, Some(&second)).unwrap().unwrap();
    assert_eq!(snapshot(&package), vec!["new.txt"]);
    // Nothing but the manifest and the package is left in the app's folder.
    assert_eq!(
        snapshot(&store.app_dir("app")),
        vec!["manifest.json", "package", "package/new.txt"]
    );
    let apps = store.load_apps();
    assert_eq!(apps[0].1.as_ref().unwrap().manifest_json, v2);

    // Without a package the old one goes.
    assert_eq!(store.put_app("app", MANIFEST, None).unwrap(), None);
    assert_eq!(snapshot(&store.app_dir("app")), vec!["manifest.json"]);
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
    let package = store.put_app("app", MANIFEST, Some(&tar)).unwrap().unwrap();
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
    fs::write(store.app_dir("b").join("manifest.json"), b"{\"type\": ").unwrap();
    fs::remove_file(store.app_dir("c").join("manifest.json")).unwrap();
    let apps = store.load_apps();
    let names: Vec<_> = apps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert!(apps[0].1.is_ok());
    assert!(matches!(apps[1].1, Err(StoreError::Corrupt { .. })));
    assert!(matches!(apps[2].1, Err(StoreError::Io { .. })));
    assert!(apps[3].1.is_ok());
    // The error names the file.
    let msg = apps[1].1.as_ref().unwrap_err().to_string();
    assert!(msg.contains("b/manifest.json"), "{msg}");
    // A manifest that is not JSON is refused before anything is written.
    assert!(matches!(
        store.put_app("e", b"not json", None),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(!store.app_dir("e").exists());
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
            "apps/app/manifest.json",
            "apps/app/package",
            "apps/app/package/a.txt",
            "schedule",
            "schedule/j.json"
        ]
    );
    assert_eq!(store.load_apps().len(), 1);
}

#[test]
fn an_interrupted_fallback_swap_is_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store
        .put_app("app", MANIFEST, Some(&tar_of(&[("a.txt", b"a")])))
        .unwrap();
    let app = store.app_dir("app");
    fs::rename(app.join("package"), app.join(".swap-1-0")).unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let apps = store.load_apps();
    let package = apps[0].1.as_ref().unwrap().package_dir.clone().unwrap();
    assert_eq!(fs::read(package.join("a.txt")).unwrap(), b"a");
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
    let package = store.put_app("app", MANIFEST, Some(&tar)).unwrap().unwrap();
    assert_eq!(fs::read(package.join("target.txt")).unwrap(), b"orig");
    assert_eq!(fs::read(package.join("sym")).unwrap(), b"new via sym");
    assert_eq!(fs::read(package.join("hard")).unwrap(), b"new via hard");
}
