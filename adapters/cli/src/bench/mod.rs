//! `cocaine bench`: measure a node under load, beside a baseline measured in the same run.
//!
//! - `bench echo` starts its own node with Rust echo workers and compares it with bare
//!   ZeroMQ echo servers (echo.rs);
//! - `bench call` loads a task of a node that is already running, with CPU per request of
//!   the node and its workers (call.rs);
//! - `bench balance` loads an app that runs on several nodes at a fixed rate, first as ZeroMQ
//!   round-robin spreads it, then as the cluster client chooses by load (balance.rs).

mod balance;
mod call;
mod cpu;
mod echo;
mod load;

use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchKind,
}

#[derive(Debug, Subcommand)]
enum BenchKind {
    /// Echo calls through a node, and the same load against bare ZeroMQ echo servers.
    Echo(echo::EchoArgs),
    /// Load a native-server or zeromq-server task of a running node (an endpoint or an app).
    Call(call::CallArgs),
    /// One app on several nodes at a fixed rate: ZeroMQ round-robin, then load-aware choice.
    Balance(balance::BalanceArgs),
}

pub fn run(args: BenchArgs) -> ExitCode {
    let result = match args.what {
        BenchKind::Echo(echo) => echo::run(&echo),
        BenchKind::Call(call) => call::run(&call),
        BenchKind::Balance(balance) => balance::run(&balance),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cocaine bench: {e}");
            ExitCode::FAILURE
        }
    }
}
