//! `list` and `info` replies as text for people. Scripts use `--json`.
//!
//! Lenient by design: a field the node does not send (an older or newer node) shows as `-`
//! or is left out, never as an error.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::table::Table;
use super::when::format_time;

const NONE: &str = "-";

pub(super) fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => NONE.to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub(super) fn number(value: Option<&Value>) -> u64 {
    value.and_then(Value::as_u64).unwrap_or(0)
}

/// `list`'s entries: one row per app.
pub fn apps(list: &Value) -> String {
    let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.is_empty() {
        return "no apps\n".to_owned();
    }
    let mut table = Table::new(&["APP", "VERSION", "ORIGIN", "STATE", "TASKS", "ERROR"]);
    for entry in entries {
        table.row(vec![
            text(entry.get("app")),
            text(entry.get("version")),
            text(entry.get("origin")),
            text(entry.get("state")),
            tasks_cell(entry.get("tasks")),
            entry
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ]);
    }
    table.without_empty_columns().render()
}

/// `echo=tcp://127.0.0.1:9110, heartbeat`: each task, with its endpoint if it has one.
fn tasks_cell(tasks: Option<&Value>) -> String {
    let Some(tasks) = tasks.and_then(Value::as_object) else {
        return NONE.to_owned();
    };
    let cells: Vec<String> = tasks
        .iter()
        .map(
            |(name, task)| match task.get("endpoint").and_then(Value::as_str) {
                Some(endpoint) => format!("{name}={endpoint}"),
                None => name.clone(),
            },
        )
        .collect();
    if cells.is_empty() {
        NONE.to_owned()
    } else {
        cells.join(", ")
    }
}

/// `info` without an app: the node's uptime and jobs, then its apps.
pub fn node(info: &Value) -> String {
    let jobs = info.get("jobs");
    let job = |key| number(jobs.and_then(|j| j.get(key)));
    let mut out = format!(
        "uptime  {}\njobs    {} queued, {} in flight, {} scheduled\n\n",
        info.get("uptime_ms")
            .and_then(Value::as_u64)
            .map_or_else(|| NONE.to_owned(), uptime),
        job("queued"),
        job("in_flight"),
        job("scheduled"),
    );
    out.push_str(&apps(info.get("apps").unwrap_or(&Value::Null)));
    out
}

/// `info APP`: the app's entry, its engine's state and numbers, per-task stats, scheduled
/// jobs.
pub fn app(info: &Value) -> String {
    let engine = info.get("engine").filter(|e| e.is_object());
    let field = |key| engine.and_then(|e| e.get(key));
    let mut lines: Vec<(&str, String)> = vec![
        ("app", text(info.get("app"))),
        ("version", text(info.get("version"))),
        ("origin", text(info.get("origin"))),
        ("state", text(info.get("state"))),
    ];
    if let Some(error) = info.get("error").and_then(Value::as_str) {
        lines.push(("error", error.to_owned()));
    }
    if let Some(engine) = engine {
        if let Some(state) = engine.get("state").and_then(Value::as_str) {
            lines.push(("engine", state.to_owned()));
        }
        if let Some(reason) = engine.get("reason").and_then(Value::as_str) {
            lines.push(("reason", reason.to_owned()));
        }
        let workers = field("workers");
        let count = |key| number(workers.and_then(|w| w.get(key)));
        lines.push(("queue", number(field("queue")).to_string()));
        lines.push((
            "workers",
            format!(
                "{} ready ({} busy), {} starting, {} draining",
                count("ready"),
                count("busy"),
                count("starting"),
                count("draining")
            ),
        ));
        lines.push((
            "jobs",
            format!(
                "{} running",
                number(field("jobs").and_then(|j| j.get("running")))
            ),
        ));
        let last = match field("last_error") {
            Some(Value::Object(e)) => {
                format!("error {}: {}", text(e.get("code")), text(e.get("message")))
            }
            _ => "none".to_owned(),
        };
        lines.push(("last error", last));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out: String = lines
        .iter()
        .map(|(k, v)| format!("{k:width$}{v}\n"))
        .collect();

    let empty = Map::new();
    let declared = info
        .get("tasks")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let stats = field("tasks").and_then(Value::as_object).unwrap_or(&empty);
    let names: BTreeSet<&String> = declared.keys().chain(stats.keys()).collect();
    let mut tasks = Table::new(&[
        "TASK",
        "TYPE",
        "ENDPOINT",
        "ACCEPTED",
        "REJECTED",
        "COMPLETED",
        "FAILED",
        "ERRORS",
        "WAIT p50/p90/p99",
        "RUN p50/p90/p99",
    ]);
    for name in names {
        let task = declared.get(name);
        let s = stats.get(name);
        let count = |key| s.map_or_else(String::new, |s| number(s.get(key)).to_string());
        tasks.row(vec![
            name.clone(),
            text(task.and_then(|t| t.get("type"))),
            task.and_then(|t| t.get("endpoint"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            count("accepted"),
            count("rejected"),
            count("completed"),
            count("failed"),
            by_code(s.and_then(|s| s.get("by_code"))),
            percentiles(s.and_then(|s| s.get("wait"))),
            percentiles(s.and_then(|s| s.get("run"))),
        ]);
    }
    if !tasks.is_empty() {
        out.push('\n');
        out.push_str(&tasks.without_empty_columns().render());
    }

    let scheduled = info
        .get("scheduled")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    out.push('\n');
    if scheduled.is_empty() {
        out.push_str("no scheduled jobs\n");
    } else {
        let mut jobs = Table::new(&["SCHEDULED", "TASK", "AT"]);
        for job in scheduled {
            let at = job
                .get("at")
                .and_then(Value::as_u64)
                .map_or_else(|| text(job.get("at")), format_time);
            jobs.row(vec![text(job.get("id")), text(job.get("task")), at]);
        }
        out.push_str(&jobs.render());
    }
    out
}

/// `503:17 504:43`, empty when no job failed.
fn by_code(codes: Option<&Value>) -> String {
    codes
        .and_then(Value::as_object)
        .map(|codes| {
            codes
                .iter()
                .map(|(code, n)| format!("{code}:{}", number(Some(n))))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `180us/950us/12.1ms`, or `-` before the first job.
fn percentiles(p: Option<&Value>) -> String {
    let Some(p) = p else {
        return String::new();
    };
    if number(p.get("count")) == 0 {
        return NONE.to_owned();
    }
    ["p50_us", "p90_us", "p99_us"]
        .iter()
        .map(|key| micros(number(p.get(*key))))
        .collect::<Vec<_>>()
        .join("/")
}

/// A duration in microseconds, in the unit that keeps it short: `850us`, `12.1ms`, `3.40s`.
pub(super) fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// `3d 4h 5m 6s`, leading zero units left out.
pub(super) fn uptime(ms: u64) -> String {
    let s = ms / 1_000;
    let parts = [(s / 86_400, "d"), (s / 3_600 % 24, "h"), (s / 60 % 60, "m")];
    let mut out: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    out.push(format!("{}s", s % 60));
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn echo_entry() -> Value {
        json!({
            "app": "echo", "version": 1, "origin": "store", "state": "running",
            "tasks": {
                "echo": {"type": "native-server", "endpoint": "tcp://127.0.0.1:9110"},
                "tick": {"type": "recurring-timer"}
            }
        })
    }

    #[test]
    fn the_app_list() {
        let list = json!([
            echo_entry(),
            {"app": "py", "version": 3, "origin": "command-line", "state": "failed",
             "error": "cannot spawn python3", "tasks": {}}
        ]);
        assert_eq!(
            apps(&list),
            "APP   VERSION  ORIGIN        STATE    TASKS                            ERROR\n\
             echo  1        store         running  echo=tcp://127.0.0.1:9110, tick\n\
             py    3        command-line  failed   -                                cannot spawn python3\n"
        );
        // No error anywhere: no error column.
        assert_eq!(
            apps(&json!([echo_entry()])),
            "APP   VERSION  ORIGIN  STATE    TASKS\n\
             echo  1        store   running  echo=tcp://127.0.0.1:9110, tick\n"
        );
        assert_eq!(apps(&json!([])), "no apps\n");
    }

    #[test]
    fn the_node() {
        let info = json!({
            "uptime_ms": 93_784_005u64,
            "apps": [echo_entry()],
            "jobs": {"queued": 2, "in_flight": 1, "scheduled": 4}
        });
        assert_eq!(
            node(&info),
            "uptime  1d 2h 3m 4s\n\
             jobs    2 queued, 1 in flight, 4 scheduled\n\
             \n\
             APP   VERSION  ORIGIN  STATE    TASKS\n\
             echo  1        store   running  echo=tcp://127.0.0.1:9110, tick\n"
        );
        assert_eq!(uptime(59_999), "59s");
        assert_eq!(uptime(3_600_000), "1h 0m 0s");
    }

    #[test]
    fn one_app() {
        let mut info = echo_entry();
        let object = info.as_object_mut().unwrap();
        object.insert(
            "engine".into(),
            json!({
                "state": "running", "queue": 3,
                "workers": {"starting": 1, "ready": 2, "busy": 1, "draining": 0},
                "jobs": {"running": 4},
                "tasks": {
                    "echo": {
                        "accepted": 10, "rejected": 1, "completed": 8, "failed": 1,
                        "by_code": {"502": 1, "503": 1},
                        "wait": {"count": 9, "p50_us": 180, "p90_us": 950, "p99_us": 12100, "max_us": 48213},
                        "run": {"count": 9, "p50_us": 2300, "p90_us": 4100, "p99_us": 1_500_000, "max_us": 1_600_000}
                    },
                    "tick": {
                        "accepted": 0, "rejected": 0, "completed": 0, "failed": 0, "by_code": {},
                        "wait": {"count": 0, "p50_us": 0, "p90_us": 0, "p99_us": 0, "max_us": 0},
                        "run": {"count": 0, "p50_us": 0, "p90_us": 0, "p99_us": 0, "max_us": 0}
                    }
                },
                "last_error": {"code": 502, "message": "boom"}
            }),
        );
        object.insert(
            "scheduled".into(),
            json!([{"id": "j1", "task": "later", "at": 1_795_629_600_000u64}]),
        );
        assert_eq!(
            app(&info),
            "app         echo\n\
             version     1\n\
             origin      store\n\
             state       running\n\
             engine      running\n\
             queue       3\n\
             workers     2 ready (1 busy), 1 starting, 0 draining\n\
             jobs        4 running\n\
             last error  error 502: boom\n\
             \n\
             TASK  TYPE             ENDPOINT              ACCEPTED  REJECTED  COMPLETED  FAILED  ERRORS       WAIT p50/p90/p99    RUN p50/p90/p99\n\
             echo  native-server    tcp://127.0.0.1:9110  10        1         8          1       502:1 503:1  180us/950us/12.1ms  2.3ms/4.1ms/1.50s\n\
             tick  recurring-timer                        0         0         0          0                    -                   -\n\
             \n\
             SCHEDULED  TASK   AT\n\
             j1         later  2026-11-25T18:00:00Z\n"
        );
    }

    #[test]
    fn a_failed_app_without_an_engine() {
        let info = json!({"app": "py", "version": 1, "origin": "store", "state": "failed",
                          "error": "cannot spawn", "tasks": {}, "scheduled": []});
        assert_eq!(
            app(&info),
            "app      py\n\
             version  1\n\
             origin   store\n\
             state    failed\n\
             error    cannot spawn\n\
             \n\
             no scheduled jobs\n"
        );
    }
}
