//! The operator's verbs beside deploy and rm: `status`, `stop`, `start`, `scale` and `quit`
//! (docs/cli.md). `top` lives in `top.rs`.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::render::{number, text, uptime};
use super::table::Table;
use super::{exit, field, print_json, request, started, AppArgs, Target};
use super::{CommandError, DEFAULT_TIMEOUT_S, START_TIMEOUT_S};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the reply as JSON, for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `cocaine status`: the node and every app at a glance.
pub fn status(args: StatusArgs) -> ExitCode {
    exit(
        "status",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::status(), &[])
            .map(|reply| {
                if args.json {
                    print_json(&reply);
                } else {
                    print!("{}", render_status(&reply));
                }
            }),
    )
}

/// `status` as text: the node's uptime and jobs, then one row per app.
pub fn render_status(status: &Value) -> String {
    let jobs = status.get("jobs");
    let job = |key| number(jobs.and_then(|j| j.get(key)));
    let mut out = format!(
        "uptime  {}\njobs    {} queued, {} in flight, {} scheduled\n\n",
        status
            .get("uptime_ms")
            .and_then(Value::as_u64)
            .map_or_else(|| "-".to_owned(), uptime),
        job("queued"),
        job("in_flight"),
        job("scheduled"),
    );
    let apps = status
        .get("apps")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if apps.is_empty() {
        out.push_str("no apps\n");
        return out;
    }
    let mut table = Table::new(&[
        "APP",
        "VERSION",
        "STATE",
        "POOL",
        "WORKERS",
        "QUEUE",
        "COMPLETED",
        "FAILED",
        "ERROR",
    ]);
    for app in apps {
        let running = app.get("workers").is_some();
        let workers = app.get("workers");
        let count = |key| number(workers.and_then(|w| w.get(key)));
        let pool = app.get("pool");
        let cell = |s: String| if running { s } else { String::new() };
        table.row(vec![
            text(app.get("app")),
            text(app.get("version")),
            text(app.get("state")),
            cell(format!(
                "{}-{}",
                number(pool.and_then(|p| p.get("min"))),
                number(pool.and_then(|p| p.get("limit")))
            )),
            cell(format!(
                "{} ready ({} busy), {} starting",
                count("ready"),
                count("busy"),
                count("starting")
            )),
            cell(number(app.get("queue")).to_string()),
            cell(number(app.get("jobs").and_then(|j| j.get("completed"))).to_string()),
            cell(number(app.get("jobs").and_then(|j| j.get("failed"))).to_string()),
            app.get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ]);
    }
    out.push_str(&table.without_empty_columns().render());
    out
}

/// `cocaine stop APP`.
pub fn stop(args: AppArgs) -> ExitCode {
    exit(
        "stop",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::stop(&args.app), &[])
            .map(|reply| {
                let app = field(&reply, "app").as_str().unwrap_or(&args.app);
                println!("stopped {app}");
            }),
    )
}

/// `cocaine start APP`: answered once it is up, as `deploy` is.
pub fn start(args: AppArgs) -> ExitCode {
    exit(
        "start",
        args.target
            .send(START_TIMEOUT_S, &request::start(&args.app), &[])
            .map(|reply| println!("started {}", started(&reply))),
    )
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The app.
    app: String,
    /// Workers kept running even when idle.
    #[arg(long, value_name = "N")]
    pool_min: Option<u64>,
    /// Workers at most.
    #[arg(long, value_name = "N")]
    pool_limit: Option<u64>,
    #[command(flatten)]
    target: Target,
}

/// `cocaine scale APP [--pool-min N] [--pool-limit N]`.
pub fn scale(args: ScaleArgs) -> ExitCode {
    exit("scale", run_scale(&args))
}

fn run_scale(args: &ScaleArgs) -> Result<(), CommandError> {
    if args.pool_min.is_none() && args.pool_limit.is_none() {
        return Err(CommandError::Usage(
            "give --pool-min N, --pool-limit N or both".into(),
        ));
    }
    let json = request::scale(&args.app, args.pool_min, args.pool_limit);
    let reply = args.target.send(DEFAULT_TIMEOUT_S, &json, &[])?;
    println!(
        "scaled {}: pool-min {}, pool-limit {}",
        field(&reply, "app").as_str().unwrap_or(&args.app),
        text(reply.get("pool-min")),
        text(reply.get("pool-limit"))
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct QuitArgs {
    #[command(flatten)]
    target: Target,
}

/// `cocaine quit`: the node stops as on SIGTERM.
pub fn quit(args: QuitArgs) -> ExitCode {
    let node = args.target.node.clone();
    exit(
        "quit",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::quit(), &[])
            .map(|_| println!("the node at {node} is stopping")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_as_text() {
        let status = json!({
            "uptime_ms": 61_000, "jobs": {"queued": 1, "in_flight": 2, "scheduled": 0},
            "apps": [
                {"app": "echo", "version": 1, "state": "running", "pool": {"min": 1, "limit": 4},
                 "workers": {"ready": 2, "busy": 1, "starting": 0}, "queue": 1,
                 "jobs": {"completed": 10, "failed": 1}},
                {"app": "off", "version": 2, "state": "stopped"},
                {"app": "bad", "version": 0, "state": "broken", "error": "worker w1.0 failed",
                 "pool": {"min": 1, "limit": 1}, "workers": {"ready": 0, "busy": 0, "starting": 1},
                 "queue": 0, "jobs": {"completed": 0, "failed": 0}}
            ]
        });
        assert_eq!(
            render_status(&status),
            "uptime  1m 1s\n\
             jobs    1 queued, 2 in flight, 0 scheduled\n\
             \n\
             APP   VERSION  STATE    POOL  WORKERS                       QUEUE  COMPLETED  FAILED  ERROR\n\
             echo  1        running  1-4   2 ready (1 busy), 0 starting  1      10         1\n\
             off   2        stopped\n\
             bad   0        broken   1-1   0 ready (0 busy), 1 starting  0      0          0       worker w1.0 failed\n"
        );
    }
}
