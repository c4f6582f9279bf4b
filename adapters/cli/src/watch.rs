//! `cocaine watch`: print an app's pubsub live, one line per publication.

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
    /// Stop after this many publications (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
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
    while args.count.is_none_or(|n| seen < n) {
        let frames = socket.recv_multipart(0).map_err(|e| e.to_string())?;
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
