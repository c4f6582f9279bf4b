//! Session keys' parts on their own (docs/security.md, "Session keys"): the sequence window,
//! the HMAC-DRBG, the store's bounds and memory bound, the session frames' codecs under
//! malformed, truncated, oversized and hostile input, and the `auth_session` fuzz corpus
//! (`COCAINE_WRITE_CORPUS=1` rewrites its seeds).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cocaine_core::auth::session::fuzzing::{check_session_input, FIXED_SESSION_KEY};
use cocaine_core::auth::session::window::{SeqRefusal, WINDOW};
use cocaine_core::auth::session::{
    mac, mac_ok, ClientSession, Drbg, Seed, SeqWindow, SessionError, SessionLimits, SessionStore,
};
use cocaine_core::auth::PublicKey;
use cocaine_core::codec::native::{NativeMessage, Policy};
use cocaine_core::codec::native_session::{
    decode_grant, encode_grant, encode_session_open, SessionAuth, SessionGrant,
};
use cocaine_core::codec::DecodeError;
use cocaine_core::time::Now;
use proptest::prelude::*;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use sha2::Sha256;

const ALICE_PEM: &[u8] = include_bytes!("data/auth/alice.pem");
const ALICE_KEY: &str = include_str!("data/auth/alice.key");

fn now() -> Now {
    Now::new(Instant::now(), SystemTime::now())
}

#[test]
fn the_window_takes_each_number_once_and_within_its_reach() {
    let mut w = SeqWindow::default();
    assert_eq!(w.admit(0), Err(SeqRefusal::Zero));
    assert_eq!(w.admit(1), Ok(()));
    assert_eq!(w.admit(1), Err(SeqRefusal::Seen));
    assert_eq!(w.admit(5), Ok(()));
    assert_eq!(w.admit(3), Ok(()), "late but within the window");
    assert_eq!(w.admit(3), Err(SeqRefusal::Seen));
    assert_eq!(w.admit(5 + WINDOW - 1), Ok(()));
    assert_eq!(w.admit(5), Err(SeqRefusal::Seen), "127 behind: still known");
    assert_eq!(
        w.admit(4),
        Err(SeqRefusal::TooOld {
            newest: 5 + WINDOW - 1
        })
    );
    assert_eq!(
        w.admit(u64::MAX),
        Ok(()),
        "a jump past the window clears it"
    );
    assert_eq!(w.admit(u64::MAX), Err(SeqRefusal::Seen));
    assert_eq!(w.newest(), u64::MAX);
}

proptest! {
    /// Against a model that remembers every number: the window never accepts a number twice,
    /// and refuses a fresh one only when it is more than the window behind the newest.
    #[test]
    fn the_window_agrees_with_a_set(seqs in proptest::collection::vec(0u64..400, 1..600)) {
        let mut w = SeqWindow::default();
        let mut seen = std::collections::HashSet::new();
        let mut newest = 0;
        for seq in seqs {
            let result = w.admit(seq);
            if seq == 0 || seen.contains(&seq) {
                prop_assert!(result.is_err());
            } else if seq + WINDOW <= newest {
                prop_assert_eq!(result, Err(SeqRefusal::TooOld { newest }));
            } else {
                prop_assert_eq!(result, Ok(()));
                seen.insert(seq);
                newest = newest.max(seq);
            }
        }
    }

    /// Any byte of a MAC'd message or of the MAC changed: refused.
    #[test]
    fn a_changed_byte_breaks_the_mac(message in proptest::collection::vec(any::<u8>(), 1..200), at in any::<usize>(), flip in 1u8..) {
        let tag = mac(&FIXED_SESSION_KEY, &message);
        prop_assert!(mac_ok(&FIXED_SESSION_KEY, &message, &tag));
        let mut changed = message.clone();
        let i = at % changed.len();
        changed[i] ^= flip;
        prop_assert!(!mac_ok(&FIXED_SESSION_KEY, &changed, &tag));
        let mut bad = tag;
        bad[at % 32] ^= flip;
        prop_assert!(!mac_ok(&FIXED_SESSION_KEY, &message, &bad));
        prop_assert!(!mac_ok(&FIXED_SESSION_KEY, &message, &tag[..31]));
    }
}

#[test]
fn the_drbg_follows_its_seed_and_never_repeats() {
    let draw = |seed: u8, mix: &[u8]| {
        let mut d = Drbg::new(&Seed([seed; 32]));
        d.mix(mix);
        let mut out = [0u8; 100];
        d.fill(&mut out);
        let mut again = [0u8; 100];
        d.fill(&mut again);
        assert_ne!(out, again);
        out
    };
    assert_eq!(draw(1, b"x"), draw(1, b"x"));
    assert_ne!(draw(1, b"x"), draw(2, b"x"));
    assert_ne!(draw(1, b"x"), draw(1, b"y"));
    assert_eq!(
        format!("{:?}", Seed([1; 32])),
        "Seed(..)",
        "Debug hides the seed"
    );
}

/// A store over alice's key with a seed.
fn store(limits: SessionLimits) -> (SessionStore, PublicKey) {
    let store = SessionStore::new(limits, Some(&Seed([9; 32])));
    (store, PublicKey::from_pem(ALICE_PEM).unwrap())
}

/// A client session from a grant, the key unwrapped with alice's private key (a test tool).
fn client(grant: &SessionGrant) -> ClientSession {
    let private = RsaPrivateKey::from_pkcs8_pem(ALICE_KEY).unwrap();
    let key = private
        .decrypt(Oaep::new::<Sha256>(), &grant.wrapped_key)
        .unwrap();
    ClientSession::new(
        grant.session.clone(),
        key.try_into().unwrap(),
        grant.expires_ms,
    )
}

fn request(s: &mut ClientSession, sid: u64) -> (SessionAuth, Bytes) {
    let frame = s.open(sid, "echo", "", &Policy::default(), [0; 32]);
    let (message, maced) = NativeMessage::decode_signed(&frame, 1 << 20).unwrap();
    let NativeMessage::OpenInSession { auth, .. } = message else {
        panic!("{message:?}")
    };
    (auth, maced.unwrap())
}

#[test]
fn a_grant_unwraps_to_a_key_the_store_accepts_and_ids_and_keys_differ() {
    let (mut store, key) = store(SessionLimits::default());
    let t = now();
    let g1 = store.open("alice", &key, t).unwrap();
    let g2 = store.open("alice", &key, t).unwrap();
    assert_ne!(g1.session, g2.session);
    assert_ne!(g1.wrapped_key, g2.wrapped_key);
    assert_eq!(g1.wrapped_key.len(), 256, "OAEP under a 2048-bit key");
    assert_eq!(g1.expires_ms, t.unix_ms() + 600_000);
    let (mut c1, mut c2) = (client(&g1), client(&g2));
    let (a1, m1) = request(&mut c1, 1);
    assert_eq!(store.check(&a1, &m1, t), Ok("alice".to_owned()));
    // One session's MAC is not another's.
    let (mut a2, m2) = request(&mut c2, 1);
    a2.session = g1.session.clone();
    assert_eq!(store.check(&a2, &m2, t), Err(SessionError::BadMac));
    assert_eq!(store.stats().accepted, 1);
    assert_eq!(store.stats().bad_mac, 1);
}

#[test]
fn without_a_seed_nothing_opens() {
    let mut store = SessionStore::new(SessionLimits::default(), None);
    let key = PublicKey::from_pem(ALICE_PEM).unwrap();
    assert!(!store.can_open());
    assert_eq!(store.open("alice", &key, now()), Err(SessionError::NoSeed));
    assert_eq!(SessionError::NoSeed.code(), 503);
}

#[test]
fn the_store_stays_within_its_bounds_and_its_memory_bound() {
    let limits = SessionLimits {
        per_user: 50,
        total: 200,
        ..SessionLimits::default()
    };
    let (mut store, key) = store(limits);
    let t = now();
    for user in 0..10 {
        for _ in 0..60 {
            let _ = store.open(&format!("user{user}"), &key, t);
            assert!(store.len() <= limits.total);
            assert!(store.len_for(&format!("user{user}")) <= limits.per_user);
        }
    }
    assert_eq!(store.len(), 200);
    // Four users fill the node, each pushing out their own oldest past 50; the rest wait.
    assert_eq!(store.stats().opened, 4 * 60);
    assert_eq!(store.stats().evicted, 4 * 10);
    assert_eq!(store.stats().too_many, 6 * 60);
    // The stated bound (docs/security.md): 16 384 sessions of at most 288 bytes, 4.5 MiB.
    let bound = SessionLimits::default().memory_bound_bytes();
    assert_eq!(bound, 16_384 * 288);
    assert!(bound >= 16_384 * (16 + 32 + 64 + 16), "{bound}");
    // Expired sessions make room; dropping a user empties theirs.
    let later = t + Duration::from_secs(121);
    assert_eq!(store.purge(later.mono), 200);
    let _ = store.open("user1", &key, later).unwrap();
    assert_eq!(store.drop_user("user1"), 1);
    assert!(store.is_empty());
}

#[test]
fn truncated_malformed_and_hostile_session_frames_are_refused() {
    let auth = SessionAuth {
        session: Bytes::from(vec![1; 16]),
        seq: 7,
        app: "echo".into(),
        body: Bytes::from(vec![2; 32]),
        mac: Bytes::from(vec![3; 32]),
    };
    let frame = encode_session_open(3, "ev", &Policy::default(), &auth);
    let (message, _) = NativeMessage::decode_signed(&frame, 1 << 20).unwrap();
    assert_eq!(message.encode(), frame);
    for end in 0..frame.len() {
        assert!(NativeMessage::decode_signed(&frame[..end], 1 << 20).is_err());
    }
    assert!(matches!(
        NativeMessage::decode_signed(&frame, 10),
        Err(DecodeError::TooLarge { .. })
    ));
    // Wrong lengths, a missing or extra key, mac not last, session not first.
    let bad = |auth: &str| {
        let mut f = vec![0x95, 0x03, 0x01, 0xa0, 0x80];
        f.extend(hex(auth));
        NativeMessage::decode_signed(&f, 1 << 20)
    };
    let session = format!("a7{}c410{}", hexs("session"), "01".repeat(16));
    let seq = format!("a3{}07", hexs("seq"));
    let app = format!("a3{}a4{}", hexs("app"), hexs("echo"));
    let body = format!("a4{}c420{}", hexs("body"), "02".repeat(32));
    let mac = format!("a3{}c420{}", hexs("mac"), "03".repeat(32));
    assert!(bad(&format!("85{session}{seq}{app}{body}{mac}")).is_ok());
    assert!(
        bad(&format!("85{session}{app}{seq}{body}{mac}")).is_ok(),
        "middle order free"
    );
    for hostile in [
        format!("84{session}{seq}{app}{body}"),
        format!("85{session}{seq}{app}{mac}{body}"),
        format!("85{session}{seq}{seq}{body}{mac}"),
        format!("86{session}{seq}{app}{body}{app}{mac}"),
        format!(
            "85{session}{seq}{app}{body}a3{}c41f{}",
            hexs("mac"),
            "03".repeat(31)
        ),
        format!(
            "85a7{}c411{}{seq}{app}{body}{mac}",
            hexs("session"),
            "01".repeat(17)
        ),
        format!("85{session}a3{}ff{app}{body}{mac}", hexs("seq")),
        format!(
            "85{session}{seq}{app}a4{}c41f{}{mac}",
            hexs("body"),
            "02".repeat(31)
        ),
        format!("de0005{session}{seq}{app}{body}{mac}"),
        format!("85{session}{seq}{app}{body}a3{}c420", hexs("mac")),
    ] {
        assert!(bad(&hostile).is_err(), "{hostile}");
    }
}

#[test]
fn grants_decode_strictly() {
    let grant = SessionGrant {
        session: Bytes::from(vec![1; 16]),
        wrapped_key: Bytes::from(vec![2; 384]),
        expires_ms: 1_800_000_000_000,
    };
    let body = encode_grant(&grant);
    assert_eq!(decode_grant(&body), Ok(grant.clone()));
    for end in 0..body.len() {
        assert!(decode_grant(&body[..end]).is_err());
    }
    let mut longer = body.to_vec();
    longer.push(0);
    assert_eq!(decode_grant(&longer), Err(DecodeError::TrailingBytes(1)));
    let with = |g: SessionGrant| decode_grant(&encode_grant(&g));
    assert!(with(SessionGrant {
        wrapped_key: Bytes::from(vec![0; 513]),
        ..grant.clone()
    })
    .is_err());
    assert!(with(SessionGrant {
        wrapped_key: Bytes::new(),
        ..grant.clone()
    })
    .is_err());
    assert!(with(SessionGrant {
        session: Bytes::from(vec![0; 15]),
        ..grant.clone()
    })
    .is_err());
    assert_eq!(
        decode_grant(&hex("940200c40100")),
        Err(DecodeError::UnknownKind(2))
    );
    assert!(decode_grant(&hex("93")).is_err());
    assert!(decode_grant(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
}

fn hexs(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The seeds of `fuzz/corpus/auth_session/`: an open in a session MAC'd with the fixed key
/// (so the target's "a valid MAC stops verifying when changed" branch runs), broken opens,
/// grants good and bad.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut auth = SessionAuth {
        session: Bytes::from(vec![0x11; 16]),
        seq: 1,
        app: "echo".into(),
        body: Bytes::from(vec![0x22; 32]),
        mac: Bytes::new(),
    };
    let policy = Policy {
        urgent: true,
        timeout_ms: Some(500),
        deadline_ms: None,
        hop: 0,
        sealed: false,
    };
    let maced = cocaine_core::codec::native_session::encode_session_open_maced_part(
        4, "ev", &policy, &auth,
    );
    auth.mac = Bytes::copy_from_slice(&mac(&FIXED_SESSION_KEY, &maced));
    let open = encode_session_open(4, "ev", &policy, &auth).to_vec();
    let grant = encode_grant(&SessionGrant {
        session: Bytes::from(vec![0x33; 16]),
        wrapped_key: Bytes::from(vec![0x44; 256]),
        expires_ms: 1_800_000_600_000,
    })
    .to_vec();
    let with = |mode: u8, bytes: &[u8]| [&[mode][..], bytes].concat();
    let mut wrong_mac = open.clone();
    let last = wrong_mac.len() - 1;
    wrong_mac[last] ^= 0xff;
    vec![
        ("open-valid", with(0, &open)),
        ("open-wrong-mac", with(2, &wrong_mac)),
        ("open-truncated", with(4, &open[..open.len() / 2])),
        (
            "open-unsigned",
            with(0, &hex("9503 01a0 80c0".replace(' ', "").as_str())),
        ),
        (
            "open-four-keys",
            with(
                0,
                &hex(
                    &format!("950301a080 84a7{}c410{}", hexs("session"), "11".repeat(16))
                        .replace(' ', ""),
                ),
            ),
        ),
        ("grant-valid", with(1, &grant)),
        ("grant-truncated", with(3, &grant[..100])),
        (
            "grant-version-2",
            with(1, &[&[0x94, 0x02], &grant[2..]].concat()),
        ),
        ("grant-empty", vec![1]),
    ]
}

#[test]
fn replay_auth_session_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/auth_session");
    if std::env::var_os("COCAINE_WRITE_CORPUS").is_some() {
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds() {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut paths: Vec<_> = (fs::read_dir(&dir).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 8, "seeds missing in {}", dir.display());
    for path in paths {
        eprintln!("{}", path.display());
        check_session_input(&fs::read(&path).unwrap());
    }
    // The valid seed is what it says: its MAC verifies under the fixed key.
    let valid = fs::read(dir.join("open-valid")).unwrap();
    let (message, maced) = NativeMessage::decode_signed(&valid[1..], 1 << 20).unwrap();
    let NativeMessage::OpenInSession { auth, .. } = message else {
        panic!("{message:?}")
    };
    assert!(mac_ok(&FIXED_SESSION_KEY, &maced.unwrap(), &auth.mac));
    for i in 0..valid.len() {
        let mut bad = valid.clone();
        bad[i] ^= 0x41;
        check_session_input(&bad);
        check_session_input(&valid[..i]);
    }
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut inputs: Vec<Vec<u8>> =
        vec![vec![], vec![0], vec![1], vec![0; 100_000], vec![1; 100_000]];
    for byte in 0..=255u8 {
        inputs.push(vec![0, 0x95, 0x03, 0x01, 0xa0, 0x80, byte, byte]);
        inputs.push(vec![1, 0x94, 0x01, byte, byte, byte]);
    }
    for input in inputs {
        check_session_input(&input);
    }
}
