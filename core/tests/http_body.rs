//! Request bodies on their own: Content-Length and chunked, fed whole and a byte at a time,
//! with hostile sizes and framing.

use bytes::BytesMut;
use cocaine_core::http::body::BodyDecoder;
use cocaine_core::http::request::BodyLength;
use cocaine_core::http::Reject;

/// Feeds `input` in pieces of `size`; returns the body, whether it ended, the first error
/// and the bytes left over after the body.
fn decode(
    length: BodyLength,
    max_body: usize,
    input: &[u8],
    size: usize,
) -> (Vec<u8>, bool, Option<Reject>, Vec<u8>) {
    let mut decoder = BodyDecoder::new(length, max_body, 64);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    for piece in input.chunks(size.max(1)) {
        buf.extend_from_slice(piece);
        if decoder.is_done() {
            continue;
        }
        let mut chunks = Vec::new();
        let result = decoder.decode(&mut buf, &mut chunks);
        chunks.iter().for_each(|c| body.extend_from_slice(c));
        if let Err(e) = result {
            return (body, false, Some(e), buf.to_vec());
        }
    }
    (body, decoder.is_done(), None, buf.to_vec())
}

#[test]
fn every_split_gives_the_same_body_and_leaves_the_next_request() {
    let chunked: &[u8] =
        b"3\r\nabc\r\n10;a=b;c\r\n0123456789abcdef\r\n0\r\nT: 1\r\nU: 2\r\n\r\nNEXT";
    let length: &[u8] = b"0123456789NEXT";
    for size in 1..chunked.len() {
        let (body, done, err, rest) = decode(BodyLength::Chunked, 100, chunked, size);
        assert_eq!(
            (body.as_slice(), done, err),
            (&b"abc0123456789abcdef"[..], true, None),
            "{size}"
        );
        assert_eq!(rest, b"NEXT");
        let (body, done, err, rest) = decode(BodyLength::Length(10), 100, length, size);
        assert_eq!(
            (body.as_slice(), done, err),
            (&b"0123456789"[..], true, None)
        );
        assert_eq!(rest, b"NEXT");
    }
    let (body, done, _, rest) = decode(BodyLength::Length(0), 100, b"NEXT", 1);
    assert!(body.is_empty() && done);
    assert_eq!(rest, b"NEXT");
}

#[test]
fn hostile_chunked_framing_is_400_and_sizes_are_bounded() {
    let cases: [(&[u8], u16); 12] = [
        (b"\r\n", 400),                  // no size
        (b"g\r\n", 400),                 // not hex
        (b"-1\r\n", 400),                // sign
        (b"0x5\r\nhello\r\n", 400),      // prefix
        (b"5 \r\nhello\r\n", 400),       // space after the size
        (b"5\r\rhello", 400),            // CR CR
        (b"5\r\nhello\n0\r\n\r\n", 400), // bare LF after data
        (b"00000000000000001\r\n", 400), // 17 digits, even with leading zeros
        (b"1;\x00\r\n", 400),            // NUL in an extension
        (b"0\r\nT: x\n\r\n", 400),       // bare LF in a trailer
        (b"65\r\n", 413),                // 101 bytes declared, 100 allowed
        (b"ffffffffffffffff\r\n", 413),  // u64::MAX declared
    ];
    for (input, status) in cases {
        let (_, done, err, _) = decode(BodyLength::Chunked, 100, input, 1);
        assert!(!done);
        assert_eq!(
            err.map(|e| e.status),
            Some(status),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    // Extensions and trailers are bounded too.
    let long_ext = [&b"1;"[..], &[b'x'; 5000], b"\r\n"].concat();
    assert_eq!(
        decode(BodyLength::Chunked, 100, &long_ext, 7)
            .2
            .map(|e| e.status),
        Some(400)
    );
    let long_trailer = [&b"0\r\nT: "[..], &[b'y'; 100], b"\r\n\r\n"].concat();
    assert_eq!(
        decode(BodyLength::Chunked, 100, &long_trailer, 3)
            .2
            .map(|e| e.status),
        Some(431)
    );
    // The largest size that fits is read as such when the limit allows it.
    let (body, done, err, _) = decode(
        BodyLength::Chunked,
        usize::MAX,
        b"ffffffffffffffff\r\nab",
        1,
    );
    assert_eq!((body.as_slice(), done, err), (&b"ab"[..], false, None));
}
