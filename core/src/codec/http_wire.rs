//! The two HTTP additions to the worker channel: the `http` key of an invoke's `meta` (what
//! the request looked like) and the kind-9 message `[9, sid, head]` (the status and headers a
//! handler chose for its reply). See `docs/http.md`.

use bytes::BytesMut;

use super::mp::{self, Reader};
use super::DecodeError;

/// Most headers a reply head may carry; a head is metadata, not a payload.
pub const MAX_REPLY_HEADERS: usize = 256;

/// The request an HTTP job answers, as the worker sees it in `meta.http`.
///
/// Header names are lowercase; values are as received, with bytes that are not UTF-8 read as
/// Latin-1 (as WSGI does), so every value is a string and none is lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpMeta {
    /// The request method as sent, e.g. `GET`.
    pub method: String,
    /// The path, without the query; `*` for `OPTIONS *`.
    pub path: String,
    /// What followed `?` in the request target (empty when nothing did), not decoded.
    pub query: String,
    /// `"1.0"` or `"1.1"`.
    pub version: String,
    /// Every header in the order received, names lowercase.
    pub headers: Vec<(String, String)>,
}

/// The status and headers of an HTTP reply, set by the handler with `[9, sid, head]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHead {
    /// 200 to 599.
    pub status: u16,
    /// Extra response headers, in order. Names are tokens; values hold no CR, LF or NUL.
    pub headers: Vec<(String, String)>,
}

impl Default for ReplyHead {
    fn default() -> Self {
        ReplyHead {
            status: 200,
            headers: Vec::new(),
        }
    }
}

/// Appends `meta.http` as a msgpack map (the value only; the caller writes the key).
pub(crate) fn encode_http_meta(out: &mut BytesMut, meta: &HttpMeta) {
    mp::put_map_len(out, 5);
    for (key, value) in [
        ("method", &meta.method),
        ("path", &meta.path),
        ("query", &meta.query),
        ("version", &meta.version),
    ] {
        mp::put_str(out, key);
        mp::put_str(out, value);
    }
    mp::put_str(out, "headers");
    put_pairs(out, &meta.headers);
}

/// Size hint for [`encode_http_meta`].
pub(crate) fn http_meta_len(meta: &HttpMeta) -> usize {
    let pairs: usize = meta
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 12)
        .sum();
    64 + meta.method.len() + meta.path.len() + meta.query.len() + pairs
}

/// Reads `meta.http`.
pub(crate) fn decode_http_meta(r: &mut Reader<'_>) -> Result<HttpMeta, DecodeError> {
    const MAP: &str = "meta.http";
    let len = r.map_len(MAP)?;
    let (mut method, mut path, mut query, mut version, mut headers) =
        (None, None, None, None, None);
    for _ in 0..len {
        match r.key(MAP)? {
            "method" => mp::set_once(&mut method, r.str("meta.http.method")?, MAP, "method")?,
            "path" => mp::set_once(&mut path, r.str("meta.http.path")?, MAP, "path")?,
            "query" => mp::set_once(&mut query, r.str("meta.http.query")?, MAP, "query")?,
            "version" => mp::set_once(&mut version, r.str("meta.http.version")?, MAP, "version")?,
            "headers" => mp::set_once(
                &mut headers,
                read_pairs(r, "meta.http.headers")?,
                MAP,
                "headers",
            )?,
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    let missing = |key| DecodeError::MissingKey { map: MAP, key };
    Ok(HttpMeta {
        method: method.ok_or(missing("method"))?.to_owned(),
        path: path.ok_or(missing("path"))?.to_owned(),
        query: query.unwrap_or_default().to_owned(),
        version: version.ok_or(missing("version"))?.to_owned(),
        headers: headers.unwrap_or_default(),
    })
}

/// Reads the `head` of `[9, sid, head]` and checks it can go on the wire as is.
pub(crate) fn decode_reply_head(r: &mut Reader<'_>) -> Result<ReplyHead, DecodeError> {
    const MAP: &str = "head";
    let len = r.map_len(MAP)?;
    let (mut status, mut headers) = (None, None);
    for _ in 0..len {
        match r.key(MAP)? {
            "status" => mp::set_once(&mut status, r.uint("head.status")?, MAP, "status")?,
            "headers" => {
                mp::set_once(&mut headers, read_pairs(r, "head.headers")?, MAP, "headers")?
            }
            other => return Err(DecodeError::unknown_key(MAP, other)),
        }
    }
    let status = match status {
        None => 200,
        Some(s @ 200..=599) => s as u16,
        Some(_) => {
            return Err(DecodeError::Invalid {
                field: "head.status",
                reason: "a reply status must be 200 to 599",
            })
        }
    };
    let headers = headers.unwrap_or_default();
    if headers.len() > MAX_REPLY_HEADERS {
        return Err(DecodeError::Invalid {
            field: "head.headers",
            reason: "more than 256 headers",
        });
    }
    for (name, value) in &headers {
        check_header(name, value)?;
    }
    Ok(ReplyHead { status, headers })
}

/// Appends a framed `[9, sid, head]` (w -> n).
pub fn encode_reply_head(out: &mut BytesMut, sid: u64, head: &ReplyHead) {
    let start = super::frame::begin_frame(out);
    mp::put_array_len(out, 3);
    mp::put_uint(out, super::worker::kind::HEAD);
    mp::put_uint(out, sid);
    mp::put_map_len(out, 2);
    mp::put_str(out, "status");
    mp::put_uint(out, u64::from(head.status));
    mp::put_str(out, "headers");
    put_pairs(out, &head.headers);
    super::frame::end_frame(out, start);
}

fn put_pairs(out: &mut BytesMut, pairs: &[(String, String)]) {
    mp::put_array_len(out, u32::try_from(pairs.len()).unwrap_or(u32::MAX));
    for (name, value) in pairs {
        mp::put_array_len(out, 2);
        mp::put_str(out, name);
        mp::put_str(out, value);
    }
}

fn read_pairs(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Vec<(String, String)>, DecodeError> {
    let len = r.array_len(field)?;
    // The declared length comes from the peer: grow as elements really arrive.
    let mut pairs = Vec::with_capacity(len.min(64));
    for _ in 0..len {
        if r.array_len(field)? != 2 {
            return Err(DecodeError::Invalid {
                field,
                reason: "each header is a [name, value] pair",
            });
        }
        pairs.push((r.str(field)?.to_owned(), r.str(field)?.to_owned()));
    }
    Ok(pairs)
}

/// A header a handler sets must not be able to split the response or forge another one.
fn check_header(name: &str, value: &str) -> Result<(), DecodeError> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(DecodeError::Invalid {
            field: "head.headers",
            reason: "a header name must be a non-empty token (letters, digits, !#$%&'*+-.^_`|~)",
        });
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(DecodeError::Invalid {
            field: "head.headers",
            reason: "a header value must not hold CR, LF or NUL",
        });
    }
    Ok(())
}

/// Whether `b` may appear in an HTTP token (RFC 9110 §5.6.2).
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
