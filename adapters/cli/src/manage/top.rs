//! `cocaine top`: a live view of every app of a node, like uwsgitop: requests per second,
//! queue, workers busy and idle, run-time percentiles and errors. It asks the node for
//! `status` every interval (apps without a pubsub endpoint show too) and computes rates from
//! the difference between two answers.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use super::render::{micros, number, text, uptime};
use super::table::Table;
use super::{exit, parse_timeout, request, CommandError, Target, DEFAULT_TIMEOUT_S};

/// Clears the terminal and puts the cursor home.
const CLEAR: &str = "\x1b[H\x1b[2J";

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_timeout)]
    interval: Duration,
    /// Print one view (rates over one interval) as plain text and exit.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    target: Target,
}

/// `cocaine top [--interval SECS] [--once]`.
pub fn top(args: TopArgs) -> ExitCode {
    exit("top", run(&args))
}

fn run(args: &TopArgs) -> Result<(), CommandError> {
    let mut before = sample(&args.target)?;
    loop {
        std::thread::sleep(args.interval);
        let now = sample(&args.target)?;
        let view = render(&args.target.node, &before, &now);
        if args.once {
            print!("{view}");
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        // A closed pipe (`cocaine top | head`) ends the loop.
        if write!(out, "{CLEAR}{view}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
        before = now;
    }
}

/// One `status` answer and when it came.
pub struct Sample {
    at: Instant,
    status: Value,
}

fn sample(target: &Target) -> Result<Sample, CommandError> {
    let status = target.send(DEFAULT_TIMEOUT_S, &request::status(), &[])?;
    Ok(Sample {
        at: Instant::now(),
        status,
    })
}

fn apps(status: &Value) -> &[Value] {
    status
        .get("apps")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Jobs that ended (completed or failed) since the app started.
fn ended(app: &Value) -> u64 {
    let jobs = app.get("jobs");
    number(jobs.and_then(|j| j.get("completed"))) + number(jobs.and_then(|j| j.get("failed")))
}

/// The view: a title line, then one row per app.
pub fn render(node: &str, before: &Sample, now: &Sample) -> String {
    let secs = now.at.saturating_duration_since(before.at).as_secs_f64();
    let mut out = format!(
        "cocaine top  {node}  uptime {}  {} apps\n\n",
        now.status
            .get("uptime_ms")
            .and_then(Value::as_u64)
            .map_or_else(|| "-".to_owned(), uptime),
        apps(&now.status).len()
    );
    let mut table = Table::new(&[
        "APP", "STATE", "REQ/S", "QUEUE", "BUSY", "IDLE", "STARTING", "P50", "P99", "ERRORS",
    ]);
    for app in apps(&now.status) {
        let name = app.get("app");
        let earlier = apps(&before.status)
            .iter()
            .find(|a| a.get("app") == name)
            .map_or(0, ended);
        let rate = if secs > 0.0 {
            ended(app).saturating_sub(earlier) as f64 / secs
        } else {
            0.0
        };
        let workers = app.get("workers");
        let count = |key| number(workers.and_then(|w| w.get(key))).to_string();
        let (p50, p99) = run_percentiles(app);
        let jobs = app.get("jobs");
        let errors = number(jobs.and_then(|j| j.get("failed")))
            + number(jobs.and_then(|j| j.get("rejected")));
        table.row(vec![
            text(name),
            text(app.get("state")),
            format!("{rate:.1}"),
            number(app.get("queue")).to_string(),
            count("busy"),
            count("idle"),
            count("starting"),
            p50,
            p99,
            errors.to_string(),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// The run-time p50 and p99 of the app's busiest task (percentiles of different tasks cannot
/// be merged), `-` before its first job.
fn run_percentiles(app: &Value) -> (String, String) {
    let busiest = app
        .get("stats")
        .and_then(Value::as_object)
        .and_then(|tasks| {
            tasks
                .values()
                .filter_map(|t| t.get("run"))
                .max_by_key(|run| number(run.get("count")))
        })
        .filter(|run| number(run.get("count")) > 0);
    match busiest {
        Some(run) => (
            micros(number(run.get("p50_us"))),
            micros(number(run.get("p99_us"))),
        ),
        None => ("-".to_owned(), "-".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(start: Instant, secs: u64, status: Value) -> Sample {
        Sample {
            at: start + Duration::from_secs(secs),
            status,
        }
    }

    #[test]
    fn rates_come_from_two_answers() {
        let app = |completed: u64, failed: u64| {
            json!({
                "app": "echo", "state": "running", "queue": 3,
                "workers": {"busy": 2, "idle": 1, "starting": 0},
                "jobs": {"completed": completed, "failed": failed, "rejected": 1},
                "stats": {
                    "echo": {"run": {"count": 9, "p50_us": 800, "p99_us": 12_100}},
                    "tick": {"run": {"count": 0, "p50_us": 0, "p99_us": 0}}
                }
            })
        };
        let start = Instant::now();
        let before = at(start, 0, json!({"uptime_ms": 1000, "apps": [app(10, 0)]}));
        let now = at(
            start,
            2,
            json!({"uptime_ms": 3000, "apps": [app(30, 2), {"app": "off", "state": "stopped"}]}),
        );
        assert_eq!(
            render("tcp://127.0.0.1:5000", &before, &now),
            "cocaine top  tcp://127.0.0.1:5000  uptime 3s  2 apps\n\
             \n\
             APP   STATE    REQ/S  QUEUE  BUSY  IDLE  STARTING  P50    P99     ERRORS\n\
             echo  running  11.0   3      2     1     0         800us  12.1ms  3\n\
             off   stopped  0.0    0      0     0     0         -      -       0\n"
        );
    }
}
