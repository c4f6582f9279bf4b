//! What checking a signed request costs: the whole verifier (nonce, key lookup, window, one
//! RSA-PSS public-key operation, the nonce cache) for 2048- and 3072-bit keys, beside the cost
//! of decoding the same request's JSON, measured in the same run as the baseline.

use std::hint::black_box;

use cocaine_core::auth::{Claim, KeyStore, ReplayLimits, Verifier};
use criterion::{criterion_group, criterion_main, Criterion};
use rsa::pkcs8::DecodePrivateKey;
use rsa::pss::Pss;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

const NOW: u64 = 1_800_000_000_000;

fn request(user: &str, nonce: &str) -> Vec<u8> {
    format!(r#"{{"version":1,"action":"list","user":"{user}","ts":{NOW},"nonce":"{nonce}"}}"#)
        .into_bytes()
}

fn verify(c: &mut Criterion) {
    let keys = [
        (
            "alice",
            2048,
            include_str!("../tests/data/auth/alice.key"),
            &include_bytes!("../tests/data/auth/alice.pem")[..],
        ),
        (
            "carol",
            3072,
            include_str!("../tests/data/auth/carol3072.key"),
            &include_bytes!("../tests/data/auth/carol3072.pem")[..],
        ),
    ];
    let mut group = c.benchmark_group("signed_request");
    let json = request("alice", "baseline-nonce-0000");
    group.bench_function("baseline_json_decode", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&json)).unwrap()))
    });
    for (user, bits, private_pem, public_pem) in keys {
        let private = RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
        let mut store = KeyStore::new();
        store.set_pem(user, public_pem).unwrap();
        // A fresh nonce per request, as real clients send: the cache grows, pruned by time.
        let signed: Vec<(String, Vec<u8>, Vec<u8>)> = (0..64)
            .map(|i| {
                let nonce = format!("bench-nonce-{i:08}");
                let msg = request(user, &nonce);
                let sig = private
                    .sign_with_rng(
                        &mut rsa::rand_core::OsRng,
                        Pss::new_with_salt::<Sha256>(32),
                        &Sha256::digest(&msg),
                    )
                    .unwrap();
                (nonce, msg, sig)
            })
            .collect();
        let mut verifier = Verifier::new(store, ReplayLimits::default());
        let mut now = NOW;
        let mut i = 0;
        group.bench_function(format!("verify_rsa{bits}"), |b| {
            b.iter(|| {
                let (nonce, msg, sig) = &signed[i % signed.len()];
                i += 1;
                if i % signed.len() == 0 {
                    // Every nonce leaves the cache before its next use.
                    now += 61_000;
                }
                let claim = Claim {
                    user,
                    ts: now,
                    nonce,
                };
                // The timestamp is outside the signed bytes here, so only the check's cost
                // is measured: the signature matches `msg`, signed with ts = NOW.
                let _ = black_box(verifier.verify(claim, msg, sig, now));
            })
        });
        assert!(verifier.stats().accepted > 0);
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
