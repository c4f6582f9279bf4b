//! The control protocol codec: every action, every error class, reply bytes, and no panics.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use cocaine_core::control::fuzzing::{check_control_request, frames};
use cocaine_core::control::{
    check_app_name, Action, ControlError, ControlReply, ControlRequest, When, ACTIONS,
};
use proptest::prelude::*;
use serde_json::json;

const MAX: usize = 1 << 20;

fn decode_frames(frames: &[&[u8]]) -> Result<ControlRequest, ControlError> {
    let frames: Vec<Bytes> = frames.iter().map(|f| Bytes::copy_from_slice(f)).collect();
    ControlRequest::decode(&frames, MAX)
}

fn decode(json: serde_json::Value) -> Result<ControlRequest, ControlError> {
    decode_frames(&[json.to_string().as_bytes()])
}

fn action(json: serde_json::Value) -> Action {
    let request = decode(json).expect("decodes");
    assert_eq!(request.signed, None);
    request.action
}

fn error(json: serde_json::Value) -> String {
    let e = decode(json).expect_err("must fail");
    assert_eq!(e.code(), 400, "{e}");
    e.to_string()
}

#[test]
fn every_action_decodes() {
    let manifest = json!({"type": "binary", "args": ["./echo"]});
    assert_eq!(
        action(json!({"version": 1, "action": "deploy", "app": "echo", "manifest": manifest})),
        Action::Deploy {
            app: "echo".into(),
            manifest: manifest.as_object().unwrap().clone(),
            package: None
        }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "delete", "app": "a.b_c-1"})),
        Action::Delete {
            app: "a.b_c-1".into()
        }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "reload", "app": "echo"})),
        Action::Reload { app: "echo".into() }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "list"})),
        Action::List
    );
    assert_eq!(
        action(json!({"version": 1, "action": "info"})),
        Action::Info { app: None }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "info", "app": "echo"})),
        Action::Info {
            app: Some("echo".into())
        }
    );
    assert_eq!(
        action(
            json!({"version": 1, "action": "schedule", "app": "echo", "task": "later",
            "at": 1_700_000_000_000u64, "body": "aGVsbG8="})
        ),
        Action::Schedule {
            app: "echo".into(),
            task: "later".into(),
            when: When::At(1_700_000_000_000),
            body: Some(Bytes::from_static(b"hello"))
        }
    );
    assert_eq!(
        action(
            json!({"version": 1, "action": "schedule", "app": "echo", "task": "later",
            "after": 0})
        ),
        Action::Schedule {
            app: "echo".into(),
            task: "later".into(),
            when: When::After(0),
            body: None
        }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "unschedule", "id": "j-17"})),
        Action::Unschedule { id: "j-17".into() }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "peers"})),
        Action::Peers
    );
    assert_eq!(
        action(json!({"version": 1, "action": "fetch", "app": "echo"})),
        Action::Fetch { app: "echo".into() }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "keys"})),
        Action::Keys
    );
    assert_eq!(
        action(json!({"version": 1, "action": "status"})),
        Action::Status
    );
    assert_eq!(
        action(json!({"version": 1, "action": "stop", "app": "echo"})),
        Action::Stop { app: "echo".into() }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "start", "app": "echo"})),
        Action::Start { app: "echo".into() }
    );
    assert_eq!(
        action(json!({"version": 1, "action": "scale", "app": "echo", "pool-limit": 8})),
        Action::Scale {
            app: "echo".into(),
            pool_min: None,
            pool_limit: Some(8)
        }
    );
    assert_eq!(
        decode(json!({"version": 1, "action": "scale", "app": "echo"})),
        Err(ControlError::NothingToScale)
    );
    assert!(matches!(
        decode(json!({"version": 1, "action": "scale", "app": "echo", "pool-min": -1})),
        Err(ControlError::WrongType {
            key: "pool-min",
            ..
        })
    ));
    assert_eq!(
        action(json!({"version": 1, "action": "quit"})),
        Action::Quit
    );
    for name in ACTIONS {
        let a = decode(
            json!({"version": 1, "action": name, "app": "x", "manifest": {},
            "task": "t", "after": 1, "id": "i"}),
        );
        // Every action decodes, or names the one key it does not take.
        match a {
            Ok(r) => assert_eq!(r.action.name(), name),
            Err(e) => assert!(matches!(e, ControlError::UnknownKey { .. }), "{name}: {e}"),
        }
    }
}

#[test]
fn deploy_with_and_without_a_package() {
    let json =
        br#"{"version": 1, "action": "deploy", "app": "echo", "manifest": {"type": "binary"}}"#;
    let with = decode_frames(&[json, b"tar bytes"]).unwrap();
    let Action::Deploy {
        package, manifest, ..
    } = with.action
    else {
        panic!("not a deploy");
    };
    assert_eq!(package, Some(Bytes::from_static(b"tar bytes")));
    assert_eq!(manifest["type"], "binary");
    let without = decode_frames(&[json]).unwrap();
    assert!(matches!(
        without.action,
        Action::Deploy { package: None, .. }
    ));
    // An empty package frame is still a frame.
    let empty = decode_frames(&[json, b""]).unwrap();
    assert!(matches!(empty.action, Action::Deploy { package: Some(p), .. } if p.is_empty()));
    let e = decode_frames(&[json, b"a", b"b"]).unwrap_err();
    assert_eq!(
        e,
        ControlError::UnexpectedFrames {
            action: "deploy",
            max: 1,
            got: 2
        }
    );
    let e = decode_frames(&[br#"{"version": 1, "action": "list"}"#, b"x"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "action `list` takes 0 binary frame(s) after the JSON, got 1"
    );
}

#[test]
fn signed_requests_split_the_frames() {
    let json = br#"{"version":1,"action":"deploy","app":"echo","manifest":{},"user":"ops","ts":1700000000000,"nonce":"n1"}"#;
    let request = decode_frames(&[json, b"package", b"signature"]).unwrap();
    let signed = request.signed.expect("signed");
    assert_eq!(signed.user, "ops");
    assert_eq!(signed.ts, 1_700_000_000_000);
    assert_eq!(signed.nonce, "n1");
    assert_eq!(signed.signature, Bytes::from_static(b"signature"));
    assert_eq!(signed.signed_bytes, Bytes::from_static(json));
    assert!(matches!(request.action, Action::Deploy { package: Some(p), .. } if p == "package"));

    // Without a package, the one frame after the JSON is the signature.
    let request = decode_frames(&[json, b"signature"]).unwrap();
    assert!(matches!(
        request.action,
        Action::Deploy { package: None, .. }
    ));
    assert_eq!(request.signed.unwrap().signature, "signature");

    let list = br#"{"version":1,"action":"list","user":"ops","ts":5,"nonce":"n"}"#;
    assert_eq!(
        decode_frames(&[list]).unwrap_err(),
        ControlError::MissingSignature
    );
    assert_eq!(
        decode_frames(&[list, b"sig", b"extra"]).unwrap_err(),
        ControlError::UnexpectedFrames {
            action: "list",
            max: 0,
            got: 1
        }
    );
    let request = decode_frames(&[list, b"sig"]).unwrap();
    assert_eq!(request.action, Action::List);
    assert_eq!(
        request.signed.unwrap().signed_bytes,
        Bytes::from_static(list)
    );

    assert_eq!(
        error(json!({"version": 1, "action": "list", "user": "ops", "ts": 5})),
        "a signed request needs `user`, `ts` and `nonce`: `nonce` is missing"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "list", "nonce": "n"})),
        "a signed request needs `user`, `ts` and `nonce`: `user` is missing"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "list", "user": "u", "ts": -1, "nonce": "n"})),
        "key `ts`: expected a non-negative integer, found a negative number"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "list", "user": "", "ts": 1, "nonce": "n"})),
        "key `user` must not be empty"
    );
}

#[test]
fn malformed_requests() {
    assert_eq!(decode_frames(&[]).unwrap_err(), ControlError::NoFrames);
    let e = decode_frames(&[b"{not json"]).unwrap_err();
    assert!(matches!(e, ControlError::NotJson(_)), "{e}");
    assert_eq!(e.code(), 400);
    assert!(matches!(
        decode_frames(&[b"\xff\xfe"]).unwrap_err(),
        ControlError::NotJson(_)
    ));
    assert!(matches!(
        decode_frames(&[b""]).unwrap_err(),
        ControlError::NotJson(_)
    ));
    assert!(matches!(
        decode_frames(&[br#"{"version": 1} trailing"#]).unwrap_err(),
        ControlError::NotJson(_)
    ));
    assert_eq!(
        error(json!([1, "list"])),
        "request is not a JSON object: found an array"
    );
    assert_eq!(
        error(json!("list")),
        "request is not a JSON object: found a string"
    );
    assert_eq!(
        decode_frames(&[br#"{"version": 1, "action": "list", "action": "keys"}"#]).unwrap_err(),
        ControlError::DuplicateKey("action".into())
    );
    assert_eq!(
        decode_frames(&[
            br#"{"version":1,"action":"deploy","app":"a","manifest":{"type":"x","type":"y"}}"#
        ])
        .unwrap_err()
        .to_string(),
        "duplicate key \"type\""
    );
}

#[test]
fn version_is_required_and_must_be_1() {
    assert_eq!(error(json!({"action": "list"})), "missing key `version`");
    assert_eq!(
        error(json!({"version": 2, "action": "list"})),
        "unsupported version 2; this node speaks version 1"
    );
    assert_eq!(
        error(json!({"version": "1", "action": "list"})),
        "unsupported version \"1\"; this node speaks version 1"
    );
    assert!(error(json!({"version": 1.5, "action": "list"})).starts_with("unsupported version"));
    // Like the manifest, an integral float is an integer.
    assert_eq!(
        decode_frames(&[br#"{"version": 1.0, "action": "list"}"#])
            .unwrap()
            .action,
        Action::List
    );
    let after = decode_frames(&[
        br#"{"version": 1, "action": "schedule", "app": "a", "task": "t", "after": 1e3}"#,
    ]);
    assert!(matches!(
        after.unwrap().action,
        Action::Schedule {
            when: When::After(1000),
            ..
        }
    ));
    // The version is checked before the action.
    assert_eq!(
        error(json!({"version": 0, "action": "nope"})),
        "unsupported version 0; this node speaks version 1"
    );
}

#[test]
fn unknown_actions_and_keys_are_named_with_a_suggestion() {
    assert_eq!(error(json!({"version": 1})), "missing key `action`");
    assert_eq!(
        error(json!({"version": 1, "action": 3})),
        "key `action`: expected a string, found a number"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "deplyo"})),
        "unknown action \"deplyo\"; did you mean \"deploy\"?"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "Unschedule"})),
        "unknown action \"Unschedule\"; did you mean \"unschedule\"?"
    );
    // A name far from every action gets no hint ("restart" has one since `start` exists).
    assert_eq!(
        error(json!({"version": 1, "action": "frobnicate"})),
        "unknown action \"frobnicate\""
    );
    assert_eq!(
        error(json!({"version": 1, "action": "restart"})),
        "unknown action \"restart\"; did you mean \"start\"?"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "delete", "ap": "echo"})),
        "unknown key \"ap\" for action `delete`; did you mean \"app\"?"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "schedule", "app": "a", "task": "t", "afer": 5})),
        "unknown key \"afer\" for action `schedule`; did you mean \"after\"?"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "list", "app": "echo"})),
        "unknown key \"app\" for action `list`"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "list", "nonse": "x"})),
        "unknown key \"nonse\" for action `list`; did you mean \"nonce\"?"
    );
    // Echoed input is cut short.
    let long = "k".repeat(10_000);
    let message = error(json!({"version": 1, "action": "list", long.clone(): 1}));
    assert!(message.len() < 200, "{message}");
    let message = error(json!({"version": 1, "action": long}));
    assert!(message.len() < 200, "{message}");
}

#[test]
fn wrong_types_name_the_key_and_the_type() {
    assert_eq!(
        error(json!({"version": 1, "action": "delete", "app": 5})),
        "key `app`: expected a string, found a number"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "deploy", "app": "a", "manifest": "{}"})),
        "key `manifest`: expected an object, found a string"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "schedule", "app": "a", "task": "t", "at": 1.5})),
        "key `at`: expected a non-negative integer, found a fractional number"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "schedule", "app": "a", "task": ["t"], "at": 1})),
        "key `task`: expected a string, found an array"
    );
    assert_eq!(
        error(
            json!({"version": 1, "action": "schedule", "app": "a", "task": "t", "at": 1, "body": null})
        ),
        "key `body`: expected a string, found null"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "schedule", "app": "a", "task": "t", "after": 1e30})),
        "key `after`: expected a non-negative integer, found a number too large"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "unschedule", "id": true})),
        "key `id`: expected a string, found a boolean"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "unschedule", "id": ""})),
        "key `id` must not be empty"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "delete"})),
        "missing key `app`"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "deploy", "app": "a"})),
        "missing key `manifest`"
    );
    assert_eq!(
        error(json!({"version": 1, "action": "unschedule"})),
        "missing key `id`"
    );
}

#[test]
fn app_names_are_checked() {
    for good in ["a", "echo", "A.b_c-9", &"x".repeat(64), "..."] {
        assert_eq!(check_app_name(good), Ok(()), "{good}");
        assert!(decode(json!({"version": 1, "action": "fetch", "app": good})).is_ok());
    }
    for bad in [
        "",
        "a/b",
        "../etc",
        "a b",
        "é",
        ".",
        "..",
        &"x".repeat(65),
        "a\0",
    ] {
        assert!(check_app_name(bad).is_err(), "{bad:?}");
        let e = decode(json!({"version": 1, "action": "fetch", "app": bad})).unwrap_err();
        assert!(matches!(e, ControlError::BadAppName(_)), "{bad:?}: {e}");
        assert!(e.to_string().starts_with("key `app`: "), "{e}");
    }
    assert_eq!(
        error(json!({"version": 1, "action": "info", "app": "a/b"})),
        "key `app`: app name \"a/b\" has the character '/'; use A-Z, a-z, 0-9, '.', '_' and '-'"
    );
}

#[test]
fn schedule_needs_exactly_one_of_at_and_after() {
    let base = |extra: serde_json::Value| {
        let mut v = json!({"version": 1, "action": "schedule", "app": "a", "task": "t"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    assert_eq!(
        error(base(json!({"at": 1, "after": 2}))),
        "`at` and `after` are exclusive: give one"
    );
    assert_eq!(
        error(base(json!({}))),
        "`schedule` needs `at` (unix ms) or `after` (ms)"
    );
    assert_eq!(
        error(base(json!({"at": 1, "task": ""}))),
        "key `task` must not be empty"
    );
    let e = decode(base(json!({"after": 1, "body": "not base64!"}))).unwrap_err();
    assert!(matches!(e, ControlError::BadBase64(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with("key `body` is not valid base64: "),
        "{e}"
    );
    let ok = decode(base(json!({"after": 1, "body": ""}))).unwrap();
    assert!(matches!(ok.action, Action::Schedule { body: Some(b), .. } if b.is_empty()));
}

#[test]
fn oversized_frames_are_413() {
    let json = br#"{"version": 1, "action": "deploy", "app": "echo", "manifest": {}}"#;
    let frames = [Bytes::from_static(json), Bytes::from(vec![0u8; 101])];
    let e = ControlRequest::decode(&frames, 100).unwrap_err();
    assert_eq!(
        e,
        ControlError::TooLarge {
            index: 1,
            size: 101,
            limit: 100
        }
    );
    assert_eq!(e.code(), 413);
    assert_eq!(e.to_string(), "frame 1 is 101 bytes, over the limit of 100");
    // Exactly at the limit is fine.
    let frames = [Bytes::from_static(json), Bytes::from(vec![0u8; 100])];
    assert!(ControlRequest::decode(&frames, 100).is_ok());
    // An oversized JSON frame is 413 too, before it is parsed.
    let e = ControlRequest::decode(&[Bytes::from(vec![b'x'; 50])], 10).unwrap_err();
    assert_eq!(e.code(), 413);
}

#[test]
fn replies_encode_exactly() {
    assert_eq!(
        ControlReply::ok(json!({"apps": ["echo"]})).encode(),
        Bytes::from_static(br#"{"ok":{"apps":["echo"]}}"#)
    );
    assert_eq!(
        ControlReply::ok(json!(null)).encode(),
        Bytes::from_static(br#"{"ok":null}"#)
    );
    assert_eq!(
        ControlReply::error(404, "no app \"x\"").encode(),
        Bytes::from_static(br#"{"error":{"code":404,"message":"no app \"x\""}}"#)
    );
    let e = ControlError::MissingKey("app");
    assert_eq!(
        ControlReply::from(&e).encode(),
        Bytes::from_static(br#"{"error":{"code":400,"message":"missing key `app`"}}"#)
    );
    assert_eq!(
        ControlReply::from(ControlError::TooLarge {
            index: 0,
            size: 2,
            limit: 1
        })
        .encode(),
        Bytes::from_static(
            br#"{"error":{"code":413,"message":"frame 0 is 2 bytes, over the limit of 1"}}"#
        )
    );
}

#[test]
fn fuzz_frames_split_on_the_first_byte() {
    assert!(frames(b"").is_empty());
    assert_eq!(frames(b"|"), vec![Bytes::new()]);
    assert_eq!(frames(b"|a|b||c"), vec!["a", "b", "", "c"]);
}

#[test]
fn replay_control_request_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/control_request");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    let mut decoded = 0;
    for path in files {
        eprintln!("{}", path.display());
        let data = fs::read(&path).expect("corpus file");
        check_control_request(&data);
        let frames = frames(&data);
        decoded += usize::from(
            ControlRequest::decode(&frames, cocaine_core::control::fuzzing::FUZZ_MAX_MESSAGE)
                .is_ok(),
        );
    }
    assert!(
        decoded > 0,
        "no seed decodes: the corpus only reaches errors"
    );
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop::sample::select(vec![
        "version", "action", "app", "manifest", "task", "at", "after", "body", "id", "user", "ts",
        "nonce", "other",
    ]);
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..3).prop_map(|n| json!(n)),
        prop::sample::select(ACTIONS.to_vec()).prop_map(|a| json!(a)),
        "[a-z./=+]{0,8}".prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(|m| json!(m)),
        ]
    });
    prop::collection::btree_map(key, value, 0..8).prop_map(|m| json!(m))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        check_control_request(&data);
    }

    #[test]
    fn arbitrary_frames_never_panic(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..5),
        limit in 0usize..80,
    ) {
        let frames: Vec<Bytes> = frames.into_iter().map(Bytes::from).collect();
        if let Err(e) = ControlRequest::decode(&frames, limit) {
            prop_assert!(e.code() == 400 || e.code() == 413);
            let reply: serde_json::Value =
                serde_json::from_slice(&ControlReply::from(&e).encode()).unwrap();
            prop_assert_eq!(reply["error"]["code"].as_u64(), Some(u64::from(e.code())));
        }
    }

    #[test]
    fn near_valid_json_never_panics(
        object in arb_json(),
        extra in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..3),
    ) {
        // Through the fuzz check, with a separator byte that the JSON never contains.
        let mut data = vec![0xffu8];
        data.extend_from_slice(object.to_string().as_bytes());
        for frame in extra {
            data.push(0xff);
            data.extend(frame.into_iter().filter(|&b| b != 0xff));
        }
        check_control_request(&data);
    }
}
