//! Every example manifest in `manifests/` parses, with its relative paths resolved against
//! that folder.

use cocaine_core::manifest::{Manifest, TaskKind, TASK_TYPES};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("manifests")
}

/// (file stem, parsed manifest) for every `manifests/*.json`.
fn examples() -> Vec<(String, Manifest)> {
    let dir = manifests_dir();
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let app = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        let bytes = std::fs::read(&path).expect("readable manifest");
        match Manifest::parse(&app, &bytes, Some(&dir)) {
            Ok(m) => out.push((app, m)),
            Err(e) => panic!("{}:\n{e}", path.display()),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_example_parses() {
    let all = examples();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"example-2012"), "{names:?}");
    assert!(names.contains(&"all-tasks"), "{names:?}");
}

#[test]
fn examples_use_every_task_type() {
    let used: BTreeSet<&str> = examples()
        .iter()
        .flat_map(|(_, m)| {
            m.tasks
                .iter()
                .map(|t| t.kind.type_name())
                .collect::<Vec<_>>()
        })
        .collect();
    let all: BTreeSet<&str> = TASK_TYPES.iter().copied().collect();
    assert_eq!(used, all);
}

#[test]
fn example_2012_resolves_its_relative_args() {
    let (_, m) = examples()
        .into_iter()
        .find(|(n, _)| n == "example-2012")
        .expect("example");
    // `..` is folded lexically: `core/../manifests/apps/example`.
    let expected = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("manifests/apps/example");
    assert_eq!(m.args.path, expected);
    assert_eq!(m.args.raw, "local://apps/example");
    assert!(matches!(
        m.task("spool").map(|t| &t.kind),
        Some(TaskKind::FilesystemMonitor { path, .. }) if *path == expected.join("spool")
    ));
}
