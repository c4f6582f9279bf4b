//! docs/protocol.md's byte examples are what the node's own codecs read and write: every
//! worker-channel frame of §1 and every native-protocol message of §2 decodes, and encodes
//! back to the same bytes.

use bytes::BytesMut;
use cocaine_core::codec::native::NativeMessage;
use cocaine_core::codec::worker::WorkerMessage;

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The fenced code blocks of the section whose heading starts with `heading`.
fn blocks(heading: &str) -> Vec<String> {
    let section = DOC
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The bytes at the end of a line: its trailing two-digit hex words.
fn trailing_hex(line: &str) -> Vec<u8> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_hex = |w: &&&str| w.len() == 2 && w.bytes().all(|b| b.is_ascii_hexdigit());
    let start = words.len() - words.iter().rev().take_while(is_hex).count();
    words[start..]
        .iter()
        .map(|w| u8::from_str_radix(w, 16).expect("hex"))
        .collect()
}

#[test]
fn worker_channel_examples() {
    let frames: Vec<Vec<u8>> = blocks("1. Worker channel")
        .iter()
        .flat_map(|b| b.lines().map(trailing_hex).collect::<Vec<_>>())
        .filter(|bytes| !bytes.is_empty())
        .collect();
    assert_eq!(frames.len(), 6, "the echo job's six frames");
    for frame in frames {
        let (len, body) = frame.split_at(4);
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        assert_eq!(len, body.len(), "{frame:02x?}");
        let message = WorkerMessage::decode(body).unwrap_or_else(|e| panic!("{frame:02x?}: {e}"));
        let mut again = BytesMut::new();
        message.encode_framed(&mut again);
        assert_eq!(&again[..], &frame[..], "{message:?}");
    }
}

#[test]
fn native_protocol_examples() {
    let messages: Vec<Vec<u8>> = blocks("2. Native protocol")
        .iter()
        .flat_map(|b| b.lines().map(trailing_hex).collect::<Vec<_>>())
        .filter(|bytes| !bytes.is_empty())
        .collect();
    assert_eq!(messages.len(), 5, "the one-shot call's five messages");
    for bytes in messages {
        let message =
            NativeMessage::decode(&bytes, 1 << 20).unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
        assert_eq!(&message.encode()[..], &bytes[..], "{message:?}");
    }
}
