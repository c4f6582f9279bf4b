//! The http-server task's own keys (`routes`, `max-header`, `max-body`, `header-timeout`) and
//! the choice of event for a path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

/// The default `max-header`: 64 KiB for the request line and all headers together.
pub const DEFAULT_MAX_HEADER: usize = 64 << 10;
/// The default `header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The keys this module reads from a task object; the manifest reads the others.
pub const KEYS: &[&str] = &["routes", "max-header", "max-body", "header-timeout"];

/// An http-server task's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Path prefix -> event name; `None` sends every request to the task's own event.
    pub routes: Option<BTreeMap<String, Arc<str>>>,
    /// Bytes of request line and headers a request may use (431 past it).
    pub max_header: usize,
    /// Bytes of body a request may send (413 past it).
    pub max_body: usize,
    /// How long a client may take to send a request's head, and how long an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
}

/// One thing wrong with the task's keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigProblem {
    /// The key path inside the task, like `max-body` or `routes./api`.
    pub key: String,
    /// What is wrong there.
    pub message: String,
}

impl HttpConfig {
    /// Every setting at its default; `max_body` is the app's `max-message`.
    pub fn with_defaults(max_message: usize) -> Self {
        HttpConfig {
            routes: None,
            max_header: DEFAULT_MAX_HEADER,
            max_body: max_message,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }

    /// Reads the http keys of a task object; other keys are left to the manifest.
    ///
    /// # Errors
    ///
    /// Every problem found, each naming its key.
    pub fn from_task(task: &Value, max_message: usize) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut config = HttpConfig::with_defaults(max_message);
        let Some(task) = task.as_object() else {
            problems.push(problem("", "a task must be an object"));
            return Err(problems);
        };
        if let Some(v) = task.get("routes") {
            config.routes = routes(v, &mut problems);
        }
        if let Some(n) = size(task, "max-header", &mut problems) {
            config.max_header = n;
        }
        if let Some(n) = size(task, "max-body", &mut problems) {
            config.max_body = n;
        }
        if let Some(n) = size(task, "header-timeout", &mut problems) {
            config.header_timeout = Duration::from_millis(n as u64);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// The event for a request to `path`: the longest route prefix that matches it, or
    /// `task` when there are no routes; `None` when routes exist and none matches (404).
    ///
    /// A prefix matches the path itself and everything under it: `/api` matches `/api` and
    /// `/api/users` but not `/apis`; `/` matches every path.
    pub fn event_for<'a>(&'a self, path: &str, task: &'a Arc<str>) -> Option<&'a Arc<str>> {
        let Some(routes) = &self.routes else {
            return Some(task);
        };
        routes
            .iter()
            .filter(|(prefix, _)| prefix_matches(prefix, path))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, event)| event)
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

fn problem(key: &str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// A positive integer key, if present and valid.
fn size(task: &Map<String, Value>, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<usize> {
    let v = task.get(key)?;
    match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n >= 1 => Some(n),
        _ => {
            problems.push(problem(
                key,
                format!("expected a positive integer, found {v}"),
            ));
            None
        }
    }
}

fn routes(v: &Value, problems: &mut Vec<ConfigProblem>) -> Option<BTreeMap<String, Arc<str>>> {
    let Some(map) = v.as_object() else {
        problems.push(problem(
            "routes",
            format!("expected an object of path prefix -> event, found {v}"),
        ));
        return None;
    };
    if map.is_empty() {
        problems.push(problem(
            "routes",
            "is empty: leave it out to send every request to the task's event",
        ));
        return None;
    }
    let mut routes = BTreeMap::new();
    for (prefix, event) in map {
        let key = format!("routes.{prefix}");
        if !prefix.starts_with('/') {
            problems.push(problem(&key, "a route is a path prefix starting with /"));
            continue;
        }
        match event.as_str() {
            Some(e) if !e.is_empty() && !e.starts_with('_') => {
                routes.insert(prefix.clone(), Arc::from(e));
            }
            _ => problems.push(problem(
                &key,
                format!("expected an event name (non-empty, not starting with _), found {event}"),
            )),
        }
    }
    Some(routes)
}
