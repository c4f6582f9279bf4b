//! The `tasks` section: one event source per task (docs/manifest.md).

use super::endpoint::{Endpoint, Role};
use super::error::Problems;
use super::reader::{join, Obj};
use super::value;
use crate::suggest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One named event source. Its name is the event the worker is asked to handle.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Task {
    /// The task's key in `tasks`: never empty, never `engine`, never starting with `_`.
    pub name: String,
    /// What produces the events, with its settings.
    pub kind: TaskKind,
}

/// Every task type of docs/manifest.md with its validated settings. Durations in the manifest are
/// milliseconds; sizes are bytes. `max_message` defaults to the engine's `max-message`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum TaskKind {
    /// Fires every `interval` on a fixed grid, first after one interval (or at start too when
    /// `immediate`); runs may overlap.
    RecurringTimer { interval: Duration, immediate: bool },
    /// Fires `interval` after the previous run ended; never overlaps.
    DriftingTimer { interval: Duration },
    /// Fires on a cron `schedule` (5 fields, or 6 with seconds first) in `timezone`.
    Cron {
        schedule: String,
        timezone: String,
        overlap: Overlap,
    },
    /// One-shot jobs submitted over control (`schedule` action).
    ManualScheduler,
    /// Changes under `path`, batched for `debounce`.
    FilesystemMonitor {
        path: PathBuf,
        recursive: bool,
        debounce: Duration,
    },
    /// ZeroMQ ROUTER, one reply per request; replies above `reply_limit` bytes become 413.
    ZeromqServer {
        endpoint: String,
        reply_limit: usize,
        max_message: usize,
    },
    /// ZeroMQ ROUTER speaking the native protocol (streams, policies, cancel); `security`
    /// is the task's own or the app's section, `None` when neither is given.
    NativeServer {
        endpoint: String,
        max_message: usize,
        security: Option<super::SecurityConfig>,
    },
    /// ZeroMQ PULL: every message a job; replies go to pubsub.
    ZeromqSink {
        endpoint: String,
        max_message: usize,
    },
    /// ZeroMQ PULL with native invoke messages; `security` as for `NativeServer`.
    NativeSink {
        endpoint: String,
        max_message: usize,
        security: Option<super::SecurityConfig>,
    },
    /// ZeroMQ SUB connected to `endpoint`, subscribed to each prefix (none = everything).
    ZeromqSubscriber {
        endpoint: String,
        subscribe: Vec<String>,
        max_message: usize,
    },
    /// A TCP listener with the given `framing`; `max_line` bounds a line in `line` framing.
    RawServer {
        endpoint: String,
        framing: Framing,
        max_line: usize,
        max_message: usize,
    },
    /// A task type whose settings only its driver reads: a new type is one driver module
    /// and one line in the node's registry, without a variant here (`docs/drivers.md`).
    #[serde(untagged)]
    Other(OtherTask),
}

/// The validated settings of a task type that is not one of [`TaskKind`]'s own variants.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherTask {
    /// The manifest `type`.
    pub type_name: &'static str,
    /// The endpoint and whether it is bound or connected, if the task has one.
    pub endpoint: Option<(String, Role)>,
    /// The largest message accepted from the task's peers, if it has any.
    pub max_message: Option<usize>,
    /// The other keys, validated and with defaults filled in, as the driver reads them.
    pub settings: serde_json::Map<String, Value>,
}

impl serde::Serialize for OtherTask {
    /// As the built-in types: `{"type": ..., "endpoint": ..., other keys...}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut all = serde_json::Map::new();
        all.insert("type".to_owned(), Value::from(self.type_name));
        if let Some((endpoint, _)) = &self.endpoint {
            all.insert("endpoint".to_owned(), Value::from(endpoint.as_str()));
        }
        if let Some(max) = self.max_message {
            all.insert("max_message".to_owned(), Value::from(max));
        }
        all.extend(self.settings.clone());
        all.serialize(serializer)
    }
}

/// What a cron task does when its next run is due while the previous one still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Drop the due run.
    #[default]
    Skip,
    /// Keep at most one due run and start it when the previous one ends.
    BufferOne,
    /// Start it anyway.
    Allow,
}

/// How a raw-server cuts a TCP stream into requests (docs/protocol.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// One request per line.
    Line,
    /// A u32 big-endian length, then that many bytes.
    Length,
    /// The whole connection is one request.
    Stream,
}

/// The default `reply-limit` of a zeromq-server: 64 MiB.
pub const DEFAULT_REPLY_LIMIT: usize = 64 << 20;
/// The default `max-line` of a raw-server: 1 MiB.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
/// The default cron `timezone`.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// The default filesystem-monitor `debounce`.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// The task types as written in manifests, in the order of the node's registry of drivers.
pub const TASK_TYPES: &[&str] = crate::node::registry::TASK_TYPES;

impl TaskKind {
    /// The manifest `type` of this task.
    pub fn type_name(&self) -> &'static str {
        match self {
            TaskKind::RecurringTimer { .. } => "recurring-timer",
            TaskKind::DriftingTimer { .. } => "drifting-timer",
            TaskKind::Cron { .. } => "cron",
            TaskKind::ManualScheduler => "manual-scheduler",
            TaskKind::FilesystemMonitor { .. } => "filesystem-monitor",
            TaskKind::ZeromqServer { .. } => "zeromq-server",
            TaskKind::NativeServer { .. } => "native-server",
            TaskKind::ZeromqSink { .. } => "zeromq-sink",
            TaskKind::NativeSink { .. } => "native-sink",
            TaskKind::ZeromqSubscriber { .. } => "zeromq-subscriber",
            TaskKind::RawServer { .. } => "raw-server",
            TaskKind::Other(other) => other.type_name,
        }
    }

    /// The task's endpoint and whether it binds or connects it; `None` for timers and monitors.
    pub fn endpoint(&self) -> Option<(&str, Role)> {
        match self {
            TaskKind::ZeromqServer { endpoint, .. }
            | TaskKind::NativeServer { endpoint, .. }
            | TaskKind::ZeromqSink { endpoint, .. }
            | TaskKind::NativeSink { endpoint, .. }
            | TaskKind::RawServer { endpoint, .. } => Some((endpoint, Role::Bind)),
            TaskKind::ZeromqSubscriber { endpoint, .. } => Some((endpoint, Role::Connect)),
            TaskKind::Other(other) => other.endpoint.as_ref().map(|(e, role)| (e.as_str(), *role)),
            _ => None,
        }
    }

    /// The largest message accepted from this task's peers, for tasks that have any.
    pub fn max_message(&self) -> Option<usize> {
        match self {
            TaskKind::ZeromqServer { max_message, .. }
            | TaskKind::NativeServer { max_message, .. }
            | TaskKind::ZeromqSink { max_message, .. }
            | TaskKind::NativeSink { max_message, .. }
            | TaskKind::ZeromqSubscriber { max_message, .. }
            | TaskKind::RawServer { max_message, .. } => Some(*max_message),
            TaskKind::Other(other) => other.max_message,
            _ => None,
        }
    }
}

/// What task parsing needs from the rest of the manifest.
pub(crate) struct Ctx<'a> {
    /// The manifest's folder, for relative `path`s.
    pub base_dir: Option<&'a Path>,
    /// The engine's `max-message`, the default of every task's.
    pub max_message: usize,
    /// The app's `security` section, the default of every native-protocol task's.
    pub security: Option<&'a super::SecurityConfig>,
}

/// Reads the `tasks` object (required, non-empty). Tasks come out sorted by name.
pub(crate) fn parse(v: &Value, ctx: &Ctx<'_>, p: &mut Problems) -> Vec<Task> {
    let Value::Object(map) = v else {
        p.add("tasks", value::expected("an object of tasks by name", v));
        return Vec::new();
    };
    if map.is_empty() {
        p.add("tasks", "there must be at least one task");
    }
    let mut tasks = Vec::with_capacity(map.len());
    for (name, body) in map {
        check_name(name, p);
        let path = join("tasks", name);
        if let Some(kind) = parse_task(body, &path, ctx, p) {
            tasks.push(Task {
                name: name.clone(),
                kind,
            });
        }
    }
    // serde_json's map is sorted today, but the order is part of the contract, so make sure.
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

/// Task names become event names and pubsub sources (`<app>:<task> <field> ...`).
fn check_name(name: &str, p: &mut Problems) {
    let path = join("tasks", name);
    if name.is_empty() {
        p.add("tasks", "a task name must not be empty");
    } else if name == "engine" {
        p.add(
            path,
            "the task name \"engine\" is reserved for the app's own pubsub events",
        );
    } else if name.starts_with('_') {
        p.add(
            path,
            "a task name must not start with _ (SDKs never treat those as events)",
        );
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        p.add(
            path,
            "a task name must not hold spaces or control characters (it is a word in pubsub \
             envelopes)",
        );
    }
}

fn parse_task(v: &Value, path: &str, ctx: &Ctx<'_>, p: &mut Problems) -> Option<TaskKind> {
    let mut o = Obj::new(v, path, "an object with a \"type\"", p)?;
    let type_path = o.at("type");
    let ty = o.require("type", p)?;
    let ty = value::string(ty, &type_path, p)?;
    let Some(parse) = crate::node::registry::parser(ty) else {
        p.add(
            type_path,
            format!(
                "unknown task type {ty:?}; expected one of {}{}",
                TASK_TYPES.join(", "),
                suggest::hint(ty, TASK_TYPES)
            ),
        );
        // The other keys depend on the type, so they cannot be judged.
        return None;
    };
    let kind = parse(&mut o, ctx, p);
    o.finish(p);
    Some(kind)
}

/// A timer's `interval`: required milliseconds.
pub(crate) fn interval(o: &mut Obj<'_>, p: &mut Problems) -> Duration {
    o.req("interval", p, value::millis).unwrap_or_default()
}

pub(crate) fn max_message(o: &mut Obj<'_>, ctx: &Ctx<'_>, p: &mut Problems) -> usize {
    // Frames carry a u32 length, so a message cannot be larger.
    o.int::<u32>("max-message", 1, p)
        .map_or(ctx.max_message, |v| v as usize)
}

/// A required endpoint, validated for its role; kept as written.
pub(crate) fn endpoint(o: &mut Obj<'_>, role: Role, p: &mut Problems) -> String {
    o.req("endpoint", p, |v, at, p| {
        let s = value::string(v, at, p)?;
        match Endpoint::parse(s).and_then(|e| e.check_role(role).map(|()| e)) {
            Ok(_) => Some(s.to_owned()),
            Err(msg) => {
                p.add(at, msg);
                None
            }
        }
    })
    .unwrap_or_default()
}

pub(crate) fn strings(v: &Value, path: &str, p: &mut Problems) -> Option<Vec<String>> {
    let Value::Array(items) = v else {
        p.add(path, value::expected("an array of strings", v));
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(s) = value::string(item, &format!("{path}[{i}]"), p) {
            out.push(s.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task type known only to its driver answers like a built-in one.
    #[test]
    fn another_task_type_reports_its_endpoint_limit_and_settings() {
        let mut settings = serde_json::Map::new();
        settings.insert("keep-alive".to_owned(), Value::from(5000));
        let kind = TaskKind::Other(OtherTask {
            type_name: "http-server",
            endpoint: Some(("tcp://127.0.0.1:8080".to_owned(), Role::Bind)),
            max_message: Some(1024),
            settings,
        });
        assert_eq!(kind.type_name(), "http-server");
        assert_eq!(kind.endpoint(), Some(("tcp://127.0.0.1:8080", Role::Bind)));
        assert_eq!(kind.max_message(), Some(1024));
        assert_eq!(
            serde_json::to_value(&kind).unwrap(),
            serde_json::json!({"type": "http-server", "endpoint": "tcp://127.0.0.1:8080",
                               "max_message": 1024, "keep-alive": 5000})
        );
    }
}
