//! The node's numbers in the Prometheus text format (version 0.0.4), for `cocaine node
//! --metrics ADDRESS` (docs/stats.md): the same numbers as `status` and the `stats`
//! publication, under conventional names (`_total` counters, `_seconds` durations, labels for
//! the app, task and state).

use std::fmt::Write;

use super::{Percentiles, TaskStatsSnapshot};
use crate::engine::EngineInfo;

/// One app as the metrics see it.
pub struct AppMetrics<'a> {
    pub app: &'a str,
    /// `running`, `starting`, `broken`, `stopped`, `failed`...
    pub state: &'a str,
    /// The engine of a running app; none for a stopped or failed one.
    pub engine: Option<EngineMetrics<'a>>,
}

/// A running app's engine snapshot and its pool bounds now.
#[derive(Clone, Copy)]
pub struct EngineMetrics<'a> {
    pub info: &'a EngineInfo,
    pub pool_min: usize,
    pub pool_limit: usize,
}

/// A per-task counter: its name, help and where its value is.
type Counter = (&'static str, &'static str, fn(&TaskStatsSnapshot) -> u64);
/// A per-task duration summary: its name, help and which percentiles it shows.
type Durations = (
    &'static str,
    &'static str,
    fn(&TaskStatsSnapshot) -> &Percentiles,
);

const COUNTERS: [Counter; 4] = [
    (
        "cocaine_jobs_accepted_total",
        "Jobs admitted to the queue.",
        |t| t.accepted,
    ),
    (
        "cocaine_jobs_rejected_total",
        "Jobs refused at admission.",
        |t| t.rejected,
    ),
    (
        "cocaine_jobs_completed_total",
        "Jobs that ended with success.",
        |t| t.completed,
    ),
    (
        "cocaine_jobs_failed_total",
        "Admitted jobs that ended with an error.",
        |t| t.failed,
    ),
];

const DURATIONS: [Durations; 2] = [
    (
        "cocaine_job_wait_seconds",
        "From arrival to dispatch.",
        |t| &t.wait,
    ),
    (
        "cocaine_job_run_seconds",
        "From dispatch to the end.",
        |t| &t.run,
    ),
];

/// The whole exposition: node uptime, then every app's state, pool, workers, queue and
/// per-task job counters and duration quantiles.
pub fn render(uptime_secs: f64, apps: &[AppMetrics<'_>]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "cocaine_node_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
    );
    let _ = writeln!(out, "cocaine_node_uptime_seconds {uptime_secs}");
    family(
        &mut out,
        "cocaine_app_up",
        "gauge",
        "1 for an app whose state is running.",
    );
    for a in apps {
        let up = u8::from(a.state == "running");
        let (app, state) = (esc(a.app), esc(a.state));
        let _ = writeln!(
            out,
            "cocaine_app_up{{app=\"{app}\",state=\"{state}\"}} {up}"
        );
    }
    let running: Vec<(String, EngineMetrics<'_>)> = apps
        .iter()
        .filter_map(|a| a.engine.map(|e| (esc(a.app), e)))
        .collect();
    engine_gauges(&mut out, &running);
    for (name, help, value) in COUNTERS {
        family(&mut out, name, "counter", help);
        for (app, e) in &running {
            for (task, stats) in &e.info.tasks {
                let task = esc(task);
                let _ = writeln!(
                    out,
                    "{name}{{app=\"{app}\",task=\"{task}\"}} {}",
                    value(stats)
                );
            }
        }
    }
    for (name, help, value) in DURATIONS {
        family(&mut out, name, "summary", help);
        for (app, e) in &running {
            for (task, stats) in &e.info.tasks {
                let labels = format!("app=\"{app}\",task=\"{}\"", esc(task));
                summary(&mut out, name, &labels, value(stats));
            }
        }
    }
    out
}

/// Queue, running jobs, workers by state and pool bounds of each running app.
fn engine_gauges(out: &mut String, running: &[(String, EngineMetrics<'_>)]) {
    type Gauge = (&'static str, &'static str, fn(&EngineMetrics<'_>) -> usize);
    const GAUGES: [Gauge; 4] = [
        (
            "cocaine_app_queue_jobs",
            "Jobs waiting in the app's queue.",
            |e| e.info.queue,
        ),
        (
            "cocaine_app_running_jobs",
            "Jobs held by the app's workers.",
            |e| e.info.jobs.running,
        ),
        (
            "cocaine_app_pool_min_workers",
            "The app's pool-min now.",
            |e| e.pool_min,
        ),
        (
            "cocaine_app_pool_limit_workers",
            "The app's pool-limit now.",
            |e| e.pool_limit,
        ),
    ];
    for (name, help, value) in GAUGES {
        family(out, name, "gauge", help);
        for (app, e) in running {
            let _ = writeln!(out, "{name}{{app=\"{app}\"}} {}", value(e));
        }
    }
    family(
        out,
        "cocaine_app_workers",
        "gauge",
        "The app's workers by state.",
    );
    for (app, e) in running {
        let w = &e.info.workers;
        let states = [
            ("starting", w.starting),
            ("idle", w.idle),
            ("busy", w.busy),
            ("draining", w.draining),
        ];
        for (state, n) in states {
            let _ = writeln!(
                out,
                "cocaine_app_workers{{app=\"{app}\",state=\"{state}\"}} {n}"
            );
        }
    }
}

/// A summary's quantiles (in seconds) and count.
fn summary(out: &mut String, name: &str, labels: &str, p: &Percentiles) {
    for (q, us) in [("0.5", p.p50_us), ("0.9", p.p90_us), ("0.99", p.p99_us)] {
        let _ = writeln!(
            out,
            "{name}{{{labels},quantile=\"{q}\"}} {}",
            us as f64 / 1e6
        );
    }
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", p.count);
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the text format wants: backslash, double quote and newline.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let out = render(
            1.5,
            &[AppMetrics {
                app: "x\"y",
                state: "stopped",
                engine: None,
            }],
        );
        assert!(
            out.contains("cocaine_app_up{app=\"x\\\"y\",state=\"stopped\"} 0\n"),
            "{out}"
        );
        assert!(
            out.starts_with("# HELP cocaine_node_uptime_seconds"),
            "{out}"
        );
        assert!(out.contains("cocaine_node_uptime_seconds 1.5\n"), "{out}");
    }
}
