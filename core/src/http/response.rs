//! Response bytes: the head, body framing, error responses, and the HTTP status for an
//! engine error code.

use bytes::{BufMut, BytesMut};

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 clients only).
    Chunked,
    /// No length: the body ends when the connection closes (HTTP/1.0 clients).
    UntilClose,
    /// The status has no body (204, 304).
    NoBody,
}

/// Headers the core writes itself: a handler's values for them are dropped, since the body
/// framing and the connection's fate are not the handler's to choose.
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// The HTTP status for an engine error code, or `None` for 499 (the request was cancelled,
/// so nobody is waiting for an answer: the connection closes instead).
///
/// 520 (deadline) becomes 504; other codes from 400 to 599 are used as they are (a handler
/// may fail a job with 404 or 429); anything else is 500.
pub fn status_for_code(code: u32) -> Option<u16> {
    match code {
        499 => None,
        520 => Some(504),
        400..=599 => u16::try_from(code).ok(),
        _ => Some(500),
    }
}

/// Whether a status never has a body.
pub fn has_no_body(status: u16) -> bool {
    status == 204 || status == 304
}

/// The reason phrase for a status (empty for one we do not name, which HTTP allows).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Appends a response head. `connection` is the `Connection` header to send, if any
/// (`close`, or `keep-alive` for an HTTP/1.0 client that keeps the connection).
pub fn encode_head(
    out: &mut BytesMut,
    status: u16,
    headers: &[(String, String)],
    framing: BodyFraming,
    connection: Option<&str>,
) {
    out.reserve(
        64 + headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>(),
    );
    put(
        out,
        &[
            "HTTP/1.1 ",
            &status.to_string(),
            " ",
            reason(status),
            "\r\n",
        ],
    );
    for (name, value) in headers {
        if !RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            put(out, &[name, ": ", value, "\r\n"]);
        }
    }
    match framing {
        BodyFraming::Length(n) => put(out, &["content-length: ", &n.to_string(), "\r\n"]),
        BodyFraming::Chunked => put(out, &["transfer-encoding: chunked\r\n"]),
        BodyFraming::UntilClose | BodyFraming::NoBody => {}
    }
    if let Some(c) = connection {
        put(out, &["connection: ", c, "\r\n"]);
    }
    out.put_slice(b"\r\n");
}

/// Appends body bytes framed as `framing` says (nothing for `NoBody` or empty data).
pub fn encode_data(out: &mut BytesMut, framing: BodyFraming, data: &[u8]) {
    match framing {
        BodyFraming::NoBody => {}
        _ if data.is_empty() => {} // an empty chunk would end a chunked body
        BodyFraming::Chunked => {
            put(out, &[&format!("{:x}", data.len()), "\r\n"]);
            out.put_slice(data);
            out.put_slice(b"\r\n");
        }
        BodyFraming::Length(_) | BodyFraming::UntilClose => out.put_slice(data),
    }
}

/// Appends the end of a chunked body.
pub fn encode_last_chunk(out: &mut BytesMut) {
    out.put_slice(b"0\r\n\r\n");
}

/// Appends `100 Continue`.
pub fn encode_continue(out: &mut BytesMut) {
    out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// The short plain-text body of an error response: the status line's words, and for a
/// client error (4xx) the message too, since it tells the client what to fix. A server
/// error's message (a worker's exception text) stays in the node's logs.
pub fn error_body(status: u16, message: &str) -> String {
    let mut body = format!("{status} {}\n", reason(status));
    if (400..500).contains(&status) && !message.is_empty() {
        let line: String = message
            .chars()
            .take(200)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        body.push_str(&line);
        body.push('\n');
    }
    body
}

/// Appends a whole error response with a short text body (no body for a HEAD request).
pub fn encode_error(
    out: &mut BytesMut,
    status: u16,
    message: &str,
    head_only: bool,
    connection: Option<&str>,
) {
    let body = error_body(status, message);
    let headers = [(
        "content-type".to_owned(),
        "text/plain; charset=utf-8".to_owned(),
    )];
    let framing = BodyFraming::Length(body.len() as u64);
    encode_head(out, status, &headers, framing, connection);
    if !head_only {
        out.put_slice(body.as_bytes());
    }
}

fn put(out: &mut BytesMut, parts: &[&str]) {
    for p in parts {
        out.put_slice(p.as_bytes());
    }
}
