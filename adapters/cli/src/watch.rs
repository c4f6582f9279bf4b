//! `cocaine watch`: print an app's pubsub live, one line per publication.
//!
//! The engine's `stats` publication (one long line a second per app) would bury what the
//! app says, so it is shown only when asked for: `--stats`, or a prefix naming the engine
//! (`echo:engine`).

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The app's pubsub endpoint, e.g. tcp://127.0.0.1:9200 (interface names allowed).
    endpoint: String,
    /// Only publications whose envelope starts with this, e.g. "myapp:aggregate".
    #[arg(default_value = "")]
    prefix: String,
    /// Stop after this many publications shown (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Show the engine's `stats` publications too.
    #[arg(long)]
    stats: bool,
}

pub fn run(args: WatchArgs) -> ExitCode {
    match watch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cocaine watch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn watch(args: &WatchArgs) -> Result<(), String> {
    let address = cocaine_os::endpoint::resolve(&args.endpoint).map_err(|e| e.to_string())?;
    let context = zmq::Context::new();
    let socket = context.socket(zmq::SUB).map_err(|e| e.to_string())?;
    socket
        .set_subscribe(args.prefix.as_bytes())
        .map_err(|e| e.to_string())?;
    socket
        .connect(&address)
        .map_err(|e| format!("{}: {e}", args.endpoint))?;
    let mut seen = 0;
    let mut out = std::io::stdout().lock();
    let show_stats = args.stats || args.prefix.contains(":engine");
    while args.count.is_none_or(|n| seen < n) {
        let frames = socket.recv_multipart(0).map_err(|e| e.to_string())?;
        if !show_stats && frames.first().is_some_and(|e| is_stats(e)) {
            continue;
        }
        let text: Vec<String> = frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        writeln!(out, "{}", text.join(" ")).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        seen += 1;
    }
    Ok(())
}

/// Whether an envelope (`<app>:<source> <field> <host> <time>`) is the engine's `stats`.
fn is_stats(envelope: &[u8]) -> bool {
    let mut words = envelope.split(|&b| b == b' ');
    let source = words.next().unwrap_or_default();
    source.ends_with(b":engine") && words.next() == Some(&b"stats"[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_engine_stats_are_stats() {
        assert!(is_stats(b"echo:engine stats host 1796185887.423"));
        assert!(!is_stats(b"echo:engine state host 1796185887.423"));
        assert!(!is_stats(b"echo:heartbeat result host 1796185887.423"));
        assert!(!is_stats(b"echo:stats stats host 1"), "a task named stats");
        assert!(!is_stats(b""));
    }
}
