//! `cocaine call APP --cluster`: the app resolved from the node given (the nodes that run
//! it and their load), the call sent to the node the power of two choices picks, a 503
//! retried at another node (docs/cluster.md).

use std::time::Duration;

use cocaine_client::{ClientError, ClusterClient, ClusterError};

use super::{Body, CallError, Request};

/// Calls `task` of `app` somewhere in the cluster `control` belongs to; gives each reply
/// chunk to `chunk` and says on standard error which node answered.
pub fn call(
    control: &str,
    app: &str,
    task: &str,
    request: &Request,
    chunk: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), CallError> {
    // A retry sends the whole request again, so standard input is read first.
    let body = match &request.body {
        Body::Bytes(bytes) => bytes.clone(),
        Body::Stdin => {
            let mut all = Vec::new();
            super::stream_stdin(&mut |piece| {
                all.extend_from_slice(piece);
                Ok(())
            })?;
            all
        }
    };
    let mut client = ClusterClient::connect(&[control.to_owned()], app, task).map_err(other)?;
    client.set_timeout(request.patience.max(Duration::from_millis(1)));
    let reply = client.call(&request.event, &body).map_err(|e| match e {
        ClusterError::Call {
            source: ClientError::Remote { code, message },
            ..
        } => CallError::Answer {
            code: u64::from(code),
            message,
        },
        e => other(e),
    })?;
    for c in &reply.chunks {
        chunk(c)?;
    }
    eprintln!(
        "cocaine call: answered by {} at {}{}",
        reply.node_id.as_deref().unwrap_or("the node"),
        reply.endpoint,
        match reply.retries {
            0 => String::new(),
            n => format!(" after {n} busy or silent node(s)"),
        }
    );
    Ok(())
}

fn other(e: ClusterError) -> CallError {
    CallError::Other(e.to_string())
}
