//! A call over the native protocol: open, body chunks, end; reply chunks until the end or
//! an error.

use std::time::{Duration, Instant};

use cocaine_client::{Client, ReplyKind};

use super::{stream_stdin, Body, CallError, Request};

pub fn call(
    address: &str,
    request: &Request,
    chunk: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), CallError> {
    let mut client = Client::connect(address).map_err(|e| e.to_string())?;
    match &request.signer {
        Some((app, key)) if request.session => client
            .session_as(app, std::sync::Arc::new(key.clone()))
            .map_err(|e| e.to_string())?,
        Some((app, key)) => {
            client
                .sign_as(app, Box::new(key.clone()))
                .map_err(|e| e.to_string())?;
            if let Some(node_key) = &request.seal {
                client
                    .seal_to(node_key, Box::new(key.clone()))
                    .map_err(|e| e.to_string())?;
            }
        }
        None => {}
    }
    let sid = client
        .open(&request.event, request.policy.clone())
        .map_err(|e| e.to_string())?;
    match &request.body {
        Body::Stdin => {
            stream_stdin(&mut |piece| client.send(sid, piece).map_err(|e| e.to_string()))?
        }
        Body::Bytes(bytes) if bytes.is_empty() => {}
        Body::Bytes(bytes) => client.send(sid, bytes).map_err(|e| e.to_string())?,
    }
    client.end(sid).map_err(|e| e.to_string())?;

    let mut last = Instant::now();
    loop {
        let left = request.patience.saturating_sub(last.elapsed());
        let reply = match client.recv(left).map_err(|e| e.to_string())? {
            Some(reply) => reply,
            None if left.is_zero() => {
                let _ = client.cancel(sid);
                return Err(no_answer(request.patience));
            }
            None => continue,
        };
        if reply.sid != sid {
            continue;
        }
        last = Instant::now();
        match reply.kind {
            ReplyKind::Chunk(data) => chunk(&data)?,
            ReplyKind::End => return Ok(()),
            ReplyKind::Error { code, message } => {
                return Err(CallError::Answer {
                    code: u64::from(code),
                    message,
                })
            }
        }
    }
}

pub fn no_answer(patience: Duration) -> CallError {
    CallError::Other(format!("no answer within {:.1} s", patience.as_secs_f64()))
}
