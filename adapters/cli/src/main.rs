//! `cocaine`: run a node, call and watch its apps.

mod bench;
mod call;
mod log;
mod node;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cocaine",
    version,
    about = "An event-driven application server over ZeroMQ"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node with the apps of these manifests (files, or folders of *.json).
    Node(node::NodeArgs),
    /// Call an app over the native protocol and print the reply as it streams in.
    Call(call::CallArgs),
    /// Measure the node against a bare ZeroMQ baseline.
    Bench(bench::BenchArgs),
    /// Print an app's pubsub live.
    Watch(watch::WatchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => node::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Call(args) => call::run(args),
    }
}
