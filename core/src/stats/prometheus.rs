//! The node's numbers in the Prometheus text format (version 0.0.4), for `cocaine node
//! --metrics ADDRESS` (docs/stats.md): the same numbers as `status` and the `stats`
//! publication, under conventional names (`_total` counters, `_seconds` durations, labels for
//! the app, task and state).

use std::fmt::Write;

use crate::engine::EngineInfo;

/// One app as the metrics see it.
pub struct AppMetrics<'a> {
    pub app: &'a str,
    /// `running`, `starting`, `broken`, `stopped`, `failed`...
    pub state: &'a str,
    /// The engine of a running app; none for a stopped or failed one.
    pub engine: Option<(&'a EngineInfo, usize, usize)>,
}

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
        let _ = writeln!(
            out,
            "cocaine_app_up{{app=\"{}\",state=\"{}\"}} {up}",
            esc(a.app),
            esc(a.state)
        );
    }
    let running: Vec<(&str, &EngineInfo, usize, usize)> = apps
        .iter()
        .filter_map(|a| a.engine.map(|(info, min, limit)| (a.app, info, min, limit)))
        .collect();

    family(
        &mut out,
        "cocaine_app_queue_jobs",
        "gauge",
        "Jobs waiting in the app's queue.",
    );
    for (app, info, _, _) in &running {
        let _ = writeln!(
            out,
            "cocaine_app_queue_jobs{{app=\"{}\"}} {}",
            esc(app),
            info.queue
        );
    }
    family(
        &mut out,
        "cocaine_app_running_jobs",
        "gauge",
        "Jobs held by the app's workers.",
    );
    for (app, info, _, _) in &running {
        let _ = writeln!(
            out,
            "cocaine_app_running_jobs{{app=\"{}\"}} {}",
            esc(app),
            info.jobs.running
        );
    }
    family(
        &mut out,
        "cocaine_app_workers",
        "gauge",
        "The app's workers by state.",
    );
    for (app, info, _, _) in &running {
        let w = &info.workers;
        for (state, n) in [
            ("starting", w.starting),
            ("idle", w.idle),
            ("busy", w.busy),
            ("draining", w.draining),
        ] {
            let _ = writeln!(
                out,
                "cocaine_app_workers{{app=\"{}\",state=\"{state}\"}} {n}",
                esc(app)
            );
        }
    }
    family(
        &mut out,
        "cocaine_app_pool_min_workers",
        "gauge",
        "The app's pool-min.",
    );
    for (app, _, min, _) in &running {
        let _ = writeln!(
            out,
            "cocaine_app_pool_min_workers{{app=\"{}\"}} {min}",
            esc(app)
        );
    }
    family(
        &mut out,
        "cocaine_app_pool_limit_workers",
        "gauge",
        "The app's pool-limit.",
    );
    for (app, _, _, limit) in &running {
        let _ = writeln!(
            out,
            "cocaine_app_pool_limit_workers{{app=\"{}\"}} {limit}",
            esc(app)
        );
    }

    let counters: [(&str, &str, fn(&crate::stats::TaskStatsSnapshot) -> u64); 4] = [
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
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        for (app, info, _, _) in &running {
            for (task, stats) in &info.tasks {
                let _ = writeln!(
                    out,
                    "{name}{{app=\"{}\",task=\"{}\"}} {}",
                    esc(app),
                    esc(task),
                    value(stats)
                );
            }
        }
    }

    let durations: [(
        &str,
        &str,
        fn(&crate::stats::TaskStatsSnapshot) -> &crate::stats::Percentiles,
    ); 2] = [
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
    for (name, help, value) in durations {
        family(&mut out, name, "summary", help);
        for (app, info, _, _) in &running {
            for (task, stats) in &info.tasks {
                let p = value(stats);
                let labels = format!("app=\"{}\",task=\"{}\"", esc(app), esc(task));
                for (q, us) in [("0.5", p.p50_us), ("0.9", p.p90_us), ("0.99", p.p99_us)] {
                    let _ = writeln!(
                        out,
                        "{name}{{{labels},quantile=\"{q}\"}} {}",
                        us as f64 / 1e6
                    );
                }
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", p.count);
            }
        }
    }
    out
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
