//! What `list` and `info` say about the node and its apps, as JSON (docs/control.md).

use serde_json::{json, Map, Value};

use super::app::{App, Phase};
use super::Node;
use crate::ids::AppId;
use crate::manifest::Manifest;
use crate::time::Now;

impl Node {
    /// Every app, running or failed, by name.
    pub(super) fn list_apps(&self) -> Value {
        let mut names: Vec<&String> = self
            .names
            .keys()
            .chain(self.failed.keys())
            .chain(self.stopped.keys())
            .collect();
        names.sort();
        names.dedup();
        Value::Array(
            names
                .into_iter()
                .filter_map(|n| self.app_entry(n))
                .collect(),
        )
    }

    /// One app's line in `list`.
    fn app_entry(&self, name: &str) -> Option<Value> {
        if let Some(app) = self.live(name) {
            let mut entry = json!({
                "app": name,
                "version": app.manifest.version,
                "origin": app.origin,
                "state": state_of(app),
                "tasks": tasks_of(&app.manifest),
            });
            if let Some(reason) = app.engine.failing() {
                entry["error"] = Value::String(reason);
            }
            if self.successors.contains_key(name) {
                entry["deploying"] = Value::Bool(true);
            }
            return Some(entry);
        }
        if let Some(stopped) = self.stopped.get(name) {
            return Some(json!({
                "app": name,
                "version": stopped.version,
                "origin": stopped.origin,
                "state": "stopped",
                "tasks": stopped.manifest.as_deref().map_or(json!({}), tasks_of),
            }));
        }
        let failed = self.failed.get(name)?;
        Some(json!({
            "app": name,
            "version": failed.version,
            "origin": failed.origin,
            "state": "failed",
            "error": failed.reason,
            "tasks": {},
        }))
    }

    /// The node as a whole: `info` without an app.
    pub(super) fn node_info(&self, now: Now) -> Value {
        let uptime = self
            .started_at
            .map(|t| now.mono.saturating_duration_since(t).as_millis() as u64)
            .unwrap_or(0);
        let (queued, in_flight) = self.apps.values().fold((0, 0), |(q, f), app| {
            (q + app.engine.queued(), f + app.engine.jobs_in_flight())
        });
        json!({
            "uptime_ms": uptime,
            "apps": self.list_apps(),
            "jobs": {
                "queued": queued,
                "in_flight": in_flight,
                "scheduled": self.scheduler.len(),
            },
            "replication": self.replication_info(),
            "spillover": self.spill_info(),
        })
    }

    /// One app in full: its `list` entry, its engine and its scheduled jobs.
    pub(super) fn app_info(&self, name: &str) -> Option<Value> {
        let mut entry = self.app_entry(name)?;
        let engine = self
            .live(name)
            .map(|app| serde_json::to_value(app.engine.info()).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        entry["engine"] = engine;
        entry["scheduled"] = Value::Array(self.scheduler.of_app(name));
        entry["replication"] = self.app_replication_info(name);
        entry["spillover"] = self.app_spill_info(name);
        Some(entry)
    }

    /// What a deploy or reload answers once version `id` is up.
    pub(super) fn app_summary(&self, id: AppId, redeployed: bool) -> Value {
        let Some(app) = self.apps.get(&id) else {
            return Value::Null;
        };
        json!({
            "app": &*app.name,
            "version": app.manifest.version,
            "state": state_of(app),
            "redeployed": redeployed,
        })
    }
}

fn state_of(app: &App) -> &'static str {
    if !app.started() {
        "starting"
    } else if app.engine.failing().is_some() {
        // Running, but no worker ever came up: calls can only fail until the code is fixed.
        "broken"
    } else if app.phase == Phase::Running
        && app.engine.state() == &crate::engine::AppState::Running
        && super::lifecycle::awaits_first_worker(app)
    {
        // pool-min ≥ 1 and its first worker has not said hello yet.
        "starting"
    } else {
        app.engine.state().name()
    }
}

fn tasks_of(manifest: &Manifest) -> Value {
    let mut tasks = Map::new();
    for task in &manifest.tasks {
        let mut entry = json!({ "type": task.kind.type_name() });
        if let Some((address, _)) = task.kind.endpoint() {
            entry["endpoint"] = Value::String(address.to_owned());
        }
        tasks.insert(task.name.clone(), entry);
    }
    Value::Object(tasks)
}
