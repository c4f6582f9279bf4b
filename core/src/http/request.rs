//! A request's head (request line and headers), parsed with `httparse`, and what it tells
//! about the rest of the request: body framing, keep-alive and `Expect: 100-continue`.

use super::Reject;

/// Most headers a request may carry (431 past it).
pub const MAX_HEADERS: usize = 128;

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// `"1.0"` or `"1.1"`, as in the job's meta.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
}

/// How the request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// `Content-Length: n` (no header at all is `Length(0)`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method as sent (case matters in HTTP).
    pub method: String,
    /// The path of the target, without the query; `*` for `OPTIONS *`.
    pub path: String,
    /// What followed the first `?` of the target, as sent.
    pub query: String,
    pub version: Version,
    /// Every header in order, names lowercase, values with bytes that are not UTF-8 read as
    /// Latin-1.
    pub headers: Vec<(String, String)>,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    pub body: BodyLength,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// Where the first empty line ending after `from` ends in `buf` (the index just past it):
/// the end of a head. `from` is how much was searched before, so that a head arriving a
/// byte at a time is not scanned again and again.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let window = buf.get(start..)?;
    window
        .windows(2)
        .enumerate()
        .filter_map(|(i, w)| match w {
            [b'\n', b'\n'] => Some(start + i + 2),
            [b'\n', b'\r'] if window.get(i + 2) == Some(&b'\n') => Some(start + i + 3),
            _ => None,
        })
        .find(|&end| end > from)
}

/// Parses the head in `buf[..end]`, where `end` came from [`find_head_end`]. `Ok(None)`: the
/// empty line found was not the end of a head (blank lines before a request line).
///
/// # Errors
///
/// 400 for a malformed head, 431 for too many headers, 417 for an unknown expectation,
/// 501 for a transfer coding other than chunked.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, Reject> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Reject::new(431, "too many header fields"))
        }
        Err(e) => return Err(Reject::new(400, bad_head_reason(e))),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Reject::new(505, "only HTTP/1.0 and HTTP/1.1 are served")),
    };
    let method = req.method.unwrap_or_default().to_owned();
    let (path, query) = split_target(req.path.unwrap_or_default(), &method)?;
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), text(h.value)))
        .collect();
    let framing = Framing::of(&headers, version)?;
    Ok(Some((
        RequestHead {
            method,
            path,
            query,
            version,
            headers,
            keep_alive: framing.keep_alive,
            body: framing.body,
            expect_continue: framing.expect_continue,
        },
        len,
    )))
}

fn bad_head_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine | httparse::Error::Status => "invalid line ending",
        httparse::Error::Token => "invalid method",
        httparse::Error::Version => "invalid HTTP version",
        _ => "malformed request head",
    }
}

/// A header value as text: UTF-8 when it is, else Latin-1 (each byte one character).
fn text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(s) => s.to_owned(),
        Err(_) => value.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The path and query of a request target in origin form (`/a?b`), absolute form
/// (`http://host/a?b`) or asterisk form (`*`, for OPTIONS only).
fn split_target(target: &str, method: &str) -> Result<(String, String), Reject> {
    if target == "*" {
        return if method == "OPTIONS" {
            Ok(("*".to_owned(), String::new()))
        } else {
            Err(Reject::new(400, "the * target is for OPTIONS only"))
        };
    }
    let origin = if target.starts_with('/') {
        target
    } else if let Some(rest) = strip_scheme(target) {
        // Absolute form: the path starts after the authority.
        let cut = rest.find(['/', '?']).unwrap_or(rest.len());
        if cut == 0 {
            return Err(Reject::new(400, "absolute request target without a host"));
        }
        rest.get(cut..).unwrap_or_default()
    } else {
        return Err(Reject::new(400, "invalid request target"));
    };
    let origin = origin.split('#').next().unwrap_or_default();
    let (path, query) = origin.split_once('?').unwrap_or((origin, ""));
    let path = if path.is_empty() { "/" } else { path };
    Ok((path.to_owned(), query.to_owned()))
}

fn strip_scheme(target: &str) -> Option<&str> {
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    if lower.starts_with("http://") {
        target.get(7..)
    } else if lower.starts_with("https://") {
        target.get(8..)
    } else {
        None
    }
}

/// What the headers say about the body and the connection.
struct Framing {
    body: BodyLength,
    keep_alive: bool,
    expect_continue: bool,
}

impl Framing {
    fn of(headers: &[(String, String)], version: Version) -> Result<Self, Reject> {
        let values = |name: &'static str| {
            headers
                .iter()
                .filter(move |(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let hosts = values("host").count();
        if hosts > 1 || (hosts == 0 && version == Version::Http11) {
            return Err(Reject::new(
                400,
                "an HTTP/1.1 request needs exactly one Host",
            ));
        }
        let body = body_length(
            values("content-length"),
            values("transfer-encoding"),
            version,
        )?;
        let connection: Vec<String> = values("connection")
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        let has = |token: &str| connection.iter().any(|t| t == token);
        let keep_alive = match version {
            Version::Http11 => !has("close"),
            Version::Http10 => has("keep-alive") && !has("close"),
        };
        let expect_continue = match (version, values("expect").next()) {
            (_, None) | (Version::Http10, _) => false,
            (Version::Http11, Some(v)) if v.trim().eq_ignore_ascii_case("100-continue") => true,
            (Version::Http11, Some(_)) => {
                return Err(Reject::new(417, "only Expect: 100-continue is supported"))
            }
        };
        Ok(Framing {
            body,
            keep_alive,
            expect_continue,
        })
    }
}

/// Body framing from `Content-Length` and `Transfer-Encoding`, refusing every ambiguity a
/// proxy in front could read differently (request smuggling).
fn body_length<'a>(
    lengths: impl Iterator<Item = &'a str>,
    codings: impl Iterator<Item = &'a str>,
    version: Version,
) -> Result<BodyLength, Reject> {
    let lengths: Vec<&str> = lengths.collect();
    let codings: Vec<String> = codings
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(Reject::new(
                400,
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if version == Version::Http10 {
            return Err(Reject::new(400, "Transfer-Encoding in an HTTP/1.0 request"));
        }
        return match codings.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["chunked"] => Ok(BodyLength::Chunked),
            [.., "chunked"] if !codings.iter().any(|c| c.is_empty()) => {
                let chunked = codings.iter().filter(|c| *c == "chunked").count();
                if chunked > 1 {
                    Err(Reject::new(400, "chunked applied twice"))
                } else {
                    Err(Reject::new(
                        501,
                        "only the chunked transfer coding is supported",
                    ))
                }
            }
            _ => Err(Reject::new(400, "Transfer-Encoding must end with chunked")),
        };
    }
    let mut length = None;
    for value in lengths {
        let n = parse_length(value.trim())?;
        if length.is_some_and(|l| l != n) {
            return Err(Reject::new(400, "conflicting Content-Length values"));
        }
        length = Some(n);
    }
    Ok(BodyLength::Length(length.unwrap_or(0)))
}

/// Digits only: no sign, no spaces inside, no list, and no overflow.
fn parse_length(value: &str) -> Result<u64, Reject> {
    let bad = || Reject::new(400, "invalid Content-Length");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}
