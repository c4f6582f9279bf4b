//! Replays the committed seeds of the `auth_key` fuzz target (`fuzz/corpus/auth_key/`)
//! through the checks the target runs, so `cargo test` catches regressions without cargo-fuzz.

use std::fs;
use std::path::Path;

use cocaine_core::auth::fuzzing::check_auth_input;

/// Runs `check` on every seed of `fuzz/corpus/<target>/`, in name order; at least 8 must be there.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 8, "seeds missing in {}", dir.display());
    for path in seeds {
        eprintln!("{}", path.display());
        check(&fs::read(&path).unwrap());
    }
}

#[test]
fn replay_auth_key_corpus() {
    replay("auth_key", check_auth_input);
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

/// The seeds of the `auth_native` target (`fuzz/corpus/auth_native/`): signed opens made with
/// the `openssl` command line and the test key, and broken ones.
#[test]
fn replay_auth_native_corpus() {
    replay(
        "auth_native",
        cocaine_core::auth::fuzzing::check_signed_open,
    );
}

/// The committed signed open verifies (so the target's "a verified signature stops verifying
/// when changed" branch runs), and every truncation of it is refused without a panic.
#[test]
fn the_signed_seed_verifies_and_its_prefixes_do_not_panic() {
    use cocaine_core::auth::fuzzing::check_signed_open;
    use cocaine_core::auth::{signature, PublicKey};
    use cocaine_core::codec::native::NativeMessage;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/auth_native");
    let frame = fs::read(dir.join("signed-open")).unwrap();
    let (message, signed) = NativeMessage::decode_signed(&frame, 1 << 20).unwrap();
    let NativeMessage::Open {
        auth: Some(auth), ..
    } = message
    else {
        panic!("{message:?}")
    };
    let key = PublicKey::from_pem(include_bytes!("data/auth/alice.pem")).unwrap();
    assert!(signature::verify(&key, &signed.unwrap(), &auth.sig));
    for end in 0..frame.len() {
        check_signed_open(&frame[..end]);
        assert!(NativeMessage::decode_signed(&frame[..end], 1 << 20).is_err());
    }
    for i in 0..frame.len() {
        let mut bad = frame.clone();
        bad[i] ^= 0x41;
        check_signed_open(&bad);
    }
}

/// The seeds of the `seal_body` target (`fuzz/corpus/seal_body/`): payloads sealed by Python's
/// `cryptography` for the test node key (carol3072), and broken ones.
#[test]
fn replay_seal_body_corpus() {
    replay(
        "seal_body",
        cocaine_core::auth::seal_fuzzing::check_sealed_body,
    );
}

/// Every prefix of a sealed seed, and hostile lengths, are read without a panic.
#[test]
fn sealed_body_prefixes_and_hostile_inputs_do_not_panic() {
    use cocaine_core::auth::seal_fuzzing::check_sealed_body;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/seal_body");
    let seed = fs::read(dir.join("valid-small")).unwrap();
    for end in 0..seed.len() {
        check_sealed_body(&seed[..end]);
    }
    for input in [
        vec![0x94, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff],
        vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
        vec![0x94; 100_000],
    ] {
        check_sealed_body(&input);
    }
}
