//! Replays the committed seeds of the `auth_key` fuzz target (`fuzz/corpus/auth_key/`)
//! through the checks the target runs, so `cargo test` catches regressions without cargo-fuzz.

use std::fs;
use std::path::Path;

use cocaine_core::auth::fuzzing::check_auth_input;

#[test]
fn replay_auth_key_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/auth_key");
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 8, "seeds missing in {}", dir.display());
    for path in seeds {
        eprintln!("{}", path.display());
        check_auth_input(&fs::read(&path).unwrap());
    }
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut inputs: Vec<Vec<u8>> =
        vec![vec![], vec![0], vec![1], vec![0; 100_000], vec![1; 100_000]];
    for byte in 0..=255u8 {
        inputs.push(vec![0, byte, byte]);
        inputs.push(vec![1, byte, byte, byte]);
    }
    let pem = b"-----BEGIN PUBLIC KEY-----\n";
    inputs.push([&[0u8][..], pem, &[b'A'; 5000]].concat());
    for input in inputs {
        check_auth_input(&input);
    }
}
