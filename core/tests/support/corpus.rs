//! Replaying a fuzz target's committed corpus (`fuzz/corpus/<target>`, docs/fuzzing.md) and
//! keeping its generated seeds current.
//!
//! Declared once in tests/main.rs; a test file uses it with `use crate::corpus;`.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The corpus folder of fuzz target `target`.
pub fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Checks (or with `COCAINE_WRITE_CORPUS=1` writes) a target's seeds, then replays every
/// file of its corpus through `check`.
pub fn replay(target: &str, seeds: &[(&str, Vec<u8>)], check: fn(&[u8])) {
    let dir = dir(target);
    let write = std::env::var_os("COCAINE_WRITE_CORPUS").is_some();
    if write {
        fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in seeds {
        let path = dir.join(name);
        if write {
            fs::write(&path, bytes).unwrap();
        } else {
            let stored = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                &stored,
                bytes,
                "{} is stale: rerun with COCAINE_WRITE_CORPUS=1",
                path.display()
            );
        }
    }
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        eprintln!("{}", path.display());
        check(&fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count >= seeds.len());
}
