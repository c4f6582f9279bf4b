//! `cocaine call`: one native-protocol request, reply chunks printed as they arrive.
//!
//! The target is an endpoint (`tcp://...`), or an app name: then the node's control
//! endpoint is asked for the app (`info`) and its first native-server task is called.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use cocaine_client::{Client, Policy, ReplyKind};
use cocaine_core::control::check_app_name;

use crate::manage::{self, lookup, CommandError, Target};

#[derive(Debug, Args)]
pub struct CallArgs {
    /// A native-server endpoint, e.g. tcp://127.0.0.1:9110 (interface names allowed), or an
    /// app name: its first native-server task (by name), found by asking --node.
    #[arg(value_name = "ENDPOINT|APP")]
    target: String,
    /// The event; empty (the default) means the task's own name.
    #[arg(default_value = "")]
    event: String,
    /// The request body; `-` reads it from standard input, streamed in chunks.
    #[arg(default_value = "")]
    body: String,
    /// Give up after this many seconds without an answer.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// The request's `timeout` policy, in milliseconds (from dispatch to end).
    #[arg(long)]
    job_timeout: Option<u64>,
    /// The request's `deadline` policy, in milliseconds (from arrival to end).
    #[arg(long)]
    deadline: Option<u64>,
    /// Put the request at the front of the queue.
    #[arg(long)]
    urgent: bool,
    /// The node's control endpoint, to find an app given by name.
    #[arg(
        long,
        env = "COCAINE_NODE",
        default_value = manage::DEFAULT_NODE,
        value_name = "ENDPOINT"
    )]
    node: String,
}

pub fn run(args: CallArgs) -> ExitCode {
    let endpoint = if args.target.contains("://") {
        args.target.clone()
    } else {
        match find(&args) {
            Ok(endpoint) => endpoint,
            Err(e) => return manage::exit("call", Err(e)),
        }
    };
    match call(&args, &endpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cocaine call: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The endpoint of the app named by `args.target`.
fn find(args: &CallArgs) -> Result<String, CommandError> {
    check_app_name(&args.target).map_err(|e| {
        CommandError::Usage(format!(
            "{:?} is neither an endpoint (tcp://HOST:PORT) nor an app name: {e}",
            args.target
        ))
    })?;
    let target = Target {
        node: args.node.clone(),
        timeout: Some(Duration::from_secs_f64(args.timeout.max(0.001))),
    };
    let info = manage::app_info(&target, &args.target)?;
    let (_, endpoint) = lookup::native_server(&info).ok_or_else(|| {
        CommandError::Failed(format!(
            "app {:?} has no native-server task to call",
            args.target
        ))
    })?;
    // A wildcard bind is reached through the node's own host.
    let node = cocaine_os::endpoint::resolve(&args.node).unwrap_or_else(|_| args.node.clone());
    Ok(lookup::connect_address(&endpoint, &node))
}

fn call(args: &CallArgs, endpoint: &str) -> Result<(), String> {
    let address = cocaine_os::endpoint::resolve(endpoint).map_err(|e| e.to_string())?;
    let mut client = Client::connect(&address).map_err(|e| format!("{endpoint}: {e}"))?;
    let policy = Policy {
        urgent: args.urgent,
        timeout_ms: args.job_timeout,
        deadline_ms: args.deadline,
    };
    let sid = client
        .open(&args.event, policy)
        .map_err(|e| e.to_string())?;
    if args.body == "-" {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdin
                .read(&mut buf)
                .map_err(|e| format!("reading standard input: {e}"))?;
            if n == 0 {
                break;
            }
            client.send(sid, &buf[..n]).map_err(|e| e.to_string())?;
        }
    } else if !args.body.is_empty() {
        client
            .send(sid, args.body.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    client.end(sid).map_err(|e| e.to_string())?;

    let patience = Duration::from_secs_f64(args.timeout.max(0.001));
    let mut last = Instant::now();
    let mut out = std::io::stdout().lock();
    loop {
        let left = patience.saturating_sub(last.elapsed());
        let reply = match client.recv(left).map_err(|e| e.to_string())? {
            Some(reply) => reply,
            None if left.is_zero() => {
                let _ = client.cancel(sid);
                return Err(format!("no answer within {:.1} s", args.timeout));
            }
            None => continue,
        };
        if reply.sid != sid {
            continue;
        }
        last = Instant::now();
        match reply.kind {
            ReplyKind::Chunk(data) => {
                out.write_all(&data)
                    .and_then(|()| out.flush())
                    .map_err(|e| e.to_string())?;
            }
            ReplyKind::End => return Ok(()),
            ReplyKind::Error { code, message } => return Err(format!("error {code}: {message}")),
        }
    }
}
