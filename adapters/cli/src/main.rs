//! `cocaine`: run a node, call and watch its apps, manage a running node's apps.

mod bench;
mod call;
mod check;
mod discovery;
mod etcd;
mod identity;
mod keygen;
mod log;
mod manage;
mod node;
mod python_sdk;
mod reach;
mod run_dir;
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
    /// Run a node: apps from manifests (files or folders of *.json), its store and a watched folder.
    Node(node::NodeArgs),
    /// Call an app over the native protocol and print the reply as it streams in.
    Call(call::CallArgs),
    /// Measure the node against a bare ZeroMQ baseline.
    Bench(bench::BenchArgs),
    /// Print an app's pubsub live.
    Watch(watch::WatchArgs),
    /// Deploy an app to a running node: store its manifest (and package) and start it.
    Deploy(manage::DeployArgs),
    /// Stop an app and remove it from the node's store.
    Rm(manage::AppArgs),
    /// Restart an app from its stored manifest and package.
    Reload(manage::AppArgs),
    /// List a node's apps.
    List(manage::ListArgs),
    /// Describe a node, or one of its apps (state, workers, per-task stats, scheduled jobs).
    Info(manage::InfoArgs),
    /// The nodes this node hears from: each peer's apps, versions, load and last-seen.
    Peers(manage::PeersArgs),
    /// Run a job of a manual-scheduler task at a given time; prints the job's id.
    Schedule(manage::ScheduleArgs),
    /// Cancel a scheduled job.
    Unschedule(manage::UnscheduleArgs),
    /// The node and every app at a glance: state, pool, workers, queue, job counts.
    Status(manage::ops::StatusArgs),
    /// Stop an app's workers and endpoints but keep it (a restart keeps it stopped).
    Stop(manage::AppArgs),
    /// Start a stopped app again.
    Start(manage::AppArgs),
    /// Change an app's pool bounds while it runs (until it is redeployed or the node restarts).
    Scale(manage::ops::ScaleArgs),
    /// Stop the node gracefully, as SIGTERM does.
    Quit(manage::ops::QuitArgs),
    /// A live view of every app: requests/s, queue, workers, run-time percentiles, errors.
    Top(manage::top::TopArgs),
    /// Write a new RSA key pair: NAME.key (private, mode 0600) and NAME.pem (public, for a
    /// node's key folder).
    Keygen(keygen::KeygenArgs),
    /// Print a node's own public key (PEM) and its fingerprint.
    Pubkey(manage::PubkeyArgs),
    /// Print a node's key store (users, fingerprints) and its signed-request counters.
    Keys(manage::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => node::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Call(args) => call::run(args),
        Command::Deploy(args) => manage::deploy(args),
        Command::Rm(args) => manage::rm(args),
        Command::Reload(args) => manage::reload(args),
        Command::List(args) => manage::list(args),
        Command::Info(args) => manage::info(args),
        Command::Peers(args) => manage::peers(args),
        Command::Schedule(args) => manage::schedule(args),
        Command::Unschedule(args) => manage::unschedule(args),
        Command::Status(args) => manage::ops::status(args),
        Command::Stop(args) => manage::ops::stop(args),
        Command::Start(args) => manage::ops::start(args),
        Command::Scale(args) => manage::ops::scale(args),
        Command::Quit(args) => manage::ops::quit(args),
        Command::Top(args) => manage::top::top(args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Pubkey(args) => manage::pubkey(args),
        Command::Keys(args) => manage::keys(args),
    }
}
