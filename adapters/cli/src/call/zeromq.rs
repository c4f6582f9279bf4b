//! A call to a zeromq-server task: `["", body frames...]` from a DEALER, one reply
//! `["", "ok", chunks...]` or `["", "error", {"code": N, "message": "..."}]`.

use std::time::Instant;

use super::native::no_answer;
use super::{stream_stdin, Body, CallError, Request};

pub fn call(
    address: &str,
    request: &Request,
    chunk: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), CallError> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::DEALER).map_err(|e| e.to_string())?;
    socket.set_linger(0).map_err(|e| e.to_string())?;
    socket.connect(address).map_err(|e| e.to_string())?;
    let mut frames: Vec<Vec<u8>> = vec![Vec::new()];
    match &request.body {
        Body::Stdin => stream_stdin(&mut |piece| {
            frames.push(piece.to_vec());
            Ok(())
        })?,
        Body::Bytes(bytes) => frames.push(bytes.clone()),
    }
    socket
        .send_multipart(frames, 0)
        .map_err(|e| e.to_string())?;

    let deadline = Instant::now() + request.patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(no_answer(request.patience));
        }
        let wait_ms = i64::try_from(left.as_millis().max(1)).unwrap_or(i64::MAX);
        match socket.poll(zmq::POLLIN, wait_ms) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(e.to_string().into()),
        }
    }
    let reply = socket.recv_multipart(0).map_err(|e| e.to_string())?;
    match reply.as_slice() {
        [delimiter, status, chunks @ ..] if delimiter.is_empty() && status == b"ok" => {
            chunks.iter().try_for_each(|c| chunk(c))?;
            Ok(())
        }
        [delimiter, status, json] if delimiter.is_empty() && status == b"error" => {
            Err(parse_error(json))
        }
        _ => Err(format!(
            "a reply of {} frame(s) that is neither [\"\", \"ok\", chunks...] nor \
             [\"\", \"error\", json]",
            reply.len()
        )
        .into()),
    }
}

/// `{"code": N, "message": "..."}` as an answer; anything else says what came.
fn parse_error(json: &[u8]) -> CallError {
    let value: Option<serde_json::Value> = serde_json::from_slice(json).ok();
    let code = value.as_ref().and_then(|v| v.get("code")?.as_u64());
    let message = value.as_ref().and_then(|v| v.get("message")?.as_str());
    match (code, message) {
        (Some(code), Some(message)) => CallError::Answer {
            code,
            message: message.to_owned(),
        },
        _ => CallError::Other(format!(
            "an error reply that is not {{\"code\", \"message\"}}: {}",
            String::from_utf8_lossy(json)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies() {
        match parse_error(br#"{"code": 404, "message": "no handler"}"#) {
            CallError::Answer { code, message } => {
                assert_eq!((code, message.as_str()), (404, "no handler"));
            }
            CallError::Other(m) => panic!("{m}"),
        }
        for bad in [&b"nope"[..], b"{}", br#"{"code": "x", "message": "m"}"#] {
            assert!(matches!(parse_error(bad), CallError::Other(_)));
        }
    }
}
