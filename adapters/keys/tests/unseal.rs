//! Opening sealed payloads with OpenSSL (`cocaine_keys::unseal`): what the core seals for a
//! key opens with its private half and no other; a key wrapped by the `openssl` command line
//! (RSA-OAEP, SHA-256, MGF1-SHA-256) unwraps here; garbage and tampered keys never do.

use std::process::Command;

use cocaine_core::auth::seal::{self, Direction, SealError, Unsealer};
use cocaine_core::auth::PublicKey;
use cocaine_keys::{OsRandom, PrivateKey};

fn public(key: &PrivateKey) -> PublicKey {
    PublicKey::from_pem(&key.public_pem().unwrap()).unwrap()
}

#[test]
fn what_the_core_seals_for_a_key_opens_with_it_and_no_other() {
    let key = PrivateKey::generate(2048).unwrap();
    let other = PrivateKey::generate(2048).unwrap();
    let aad = seal::associated_data(Direction::Request, "alice", "echo", b"nonce-0000000001");
    let body = vec![42u8; 70_000];
    let sealed = seal::seal(&public(&key), &body, &aad, &mut OsRandom).unwrap();
    assert_eq!(
        seal::open(&sealed, &aad, &key, &mut OsRandom).unwrap(),
        body
    );
    assert_eq!(
        seal::open(&sealed, &aad, &other, &mut OsRandom),
        Err(SealError::NotOpened)
    );
    // Two seals of the same body differ: fresh key and nonce each time.
    let again = seal::seal(&public(&key), &body, &aad, &mut OsRandom).unwrap();
    assert_ne!(sealed, again);
}

#[test]
fn a_tampered_or_garbage_wrapped_key_never_unwraps() {
    let key = PrivateKey::generate(2048).unwrap();
    let payload = seal::seal(&public(&key), b"x", b"", &mut OsRandom).unwrap();
    let parsed = seal::SealedPayload::decode(&payload).unwrap();
    let mut wrapped = parsed.wrapped_key.to_vec();
    assert!(key.unwrap_key(&wrapped).is_ok());
    for at in [0, 1, 100, 255] {
        wrapped[at] ^= 0x80;
        assert_eq!(
            key.unwrap_key(&wrapped),
            Err(SealError::NotOpened),
            "byte {at}"
        );
        wrapped[at] ^= 0x80;
    }
    for garbage in [&[][..], &[0u8; 10][..], &[0xffu8; 256][..], &[0u8; 512][..]] {
        assert_eq!(key.unwrap_key(garbage), Err(SealError::NotOpened));
    }
}

#[test]
fn a_key_wrapped_by_the_openssl_command_line_unwraps() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(2048).unwrap();
    let pem = dir.path().join("node.pem");
    std::fs::write(&pem, key.public_pem().unwrap()).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, [7u8; 32]).unwrap();
    let out = dir.path().join("wrapped");
    let status = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
        .arg(&pem)
        .args([
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
            "-in",
        ])
        .arg(&secret)
        .arg("-out")
        .arg(&out)
        .status()
        .expect("the openssl command line");
    assert!(status.success());
    let wrapped = std::fs::read(&out).unwrap();
    assert_eq!(key.unwrap_key(&wrapped).unwrap(), [7u8; 32]);
}
