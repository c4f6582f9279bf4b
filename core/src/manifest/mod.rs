//! App manifests (docs/manifest.md): parsing and validation.
//!
//! [`Manifest::parse`] turns a manifest's bytes into checked, typed settings, or a
//! [`ManifestError`] listing every problem with its key path. It is pure: it never looks at
//! the filesystem, the network or the clock, so a manifest means the same on every node.
//! `docs/manifest.md` lists every key with its type, unit and default.

mod app;
mod binds;
mod cluster;
pub mod endpoint;
mod engine;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod pubsub;
mod reader;
mod security;

mod tasks;
pub(crate) mod value;

pub use app::{AppArgs, AppType};
pub use cluster::ClusterConfig;
pub use endpoint::{Endpoint, Host, Role};
pub use error::{ManifestError, Problem};
pub use pubsub::{PubsubConfig, DEFAULT_STATS_INTERVAL};
pub use security::{SecurityConfig, DEFAULT_WINDOW};
pub use tasks::{
    Framing, OtherTask, Overlap, Task, TaskKind, DEFAULT_DEBOUNCE, DEFAULT_MAX_LINE,
    DEFAULT_REPLY_LIMIT, DEFAULT_TIMEZONE, TASK_TYPES,
};

/// What a driver's module needs to parse its task type's keys: each task type's keys are
/// read by its driver (`node/registry.rs` lists them), with the same readers and messages as
/// the rest of the manifest.
pub(crate) mod keys {
    pub(crate) use super::app::resolve;
    pub(crate) use super::endpoint::Role;
    pub(crate) use super::error::Problems;
    pub(crate) use super::reader::Obj;
    pub(crate) use super::security::task_security;
    pub(crate) use super::tasks::{endpoint, interval, max_message, strings, Ctx};
    pub(crate) use super::value;
}

use crate::engine::config::EngineConfig;
use crate::json;
use error::Problems;
use reader::Obj;
use std::path::Path;

/// A validated app manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Manifest {
    /// The app's name (given to [`Manifest::parse`], not part of the JSON).
    pub app: String,
    /// `type`: how workers run the code.
    pub app_type: AppType,
    /// `args`: where the code is.
    pub args: AppArgs,
    /// `version`: the newer wins when nodes replicate apps (default 0).
    pub version: u64,
    /// `engine`, with defaults filled in.
    pub engine: EngineConfig,
    /// `pubsub`, if the app publishes.
    pub pubsub: Option<PubsubConfig>,
    /// `tasks`, sorted by name; never empty.
    pub tasks: Vec<Task>,
    /// `security`, if given.
    pub security: Option<SecurityConfig>,
    /// `cluster`, if given.
    pub cluster: Option<ClusterConfig>,
}

impl Manifest {
    /// Parses and validates the manifest of `app`. `base_dir` is the folder the manifest was
    /// read from (absolute), against which relative paths (`local://apps/echo`, a
    /// filesystem-monitor `path`) are resolved; without it they are an error.
    ///
    /// Never panics, whatever the bytes; never touches the filesystem.
    pub fn parse(
        app: &str,
        json: &[u8],
        base_dir: Option<&Path>,
    ) -> Result<Manifest, ManifestError> {
        let mut p = Problems::default();
        let root = match json::parse(json) {
            Ok(root) => root,
            Err(e) => {
                p.add("", format!("invalid JSON: {}", e.position_error()));
                return Err(p.into_error(app));
            }
        };
        if !root.is_object() {
            p.add(
                "",
                format!(
                    "the manifest must be a JSON object, found {}",
                    value::describe(&root)
                ),
            );
            return Err(p.into_error(app));
        }
        let Some(mut o) = Obj::new(&root, "", "a JSON object", &mut p) else {
            return Err(p.into_error(app));
        };

        let app_type = o.req("type", &mut p, |v, at, p| {
            value::choice(v, at, app::APP_TYPES, p)
        });
        let args = o.req("args", &mut p, |v, at, p| {
            app::parse_args(v, at, base_dir, p)
        });
        let version = o.int("version", 0, &mut p).unwrap_or(0);
        let engine = engine::parse(o.get("engine"), app_type, &mut p);
        let pubsub = o.opt("pubsub", &mut p, pubsub::parse);
        let security = o.opt("security", &mut p, |v, at, p| {
            security::parse(v, at, base_dir, p)
        });
        let ctx = tasks::Ctx {
            base_dir,
            max_message: engine.max_message,
            security: security.as_ref(),
        };
        let tasks = o
            .require("tasks", &mut p)
            .map(|v| tasks::parse(v, &ctx, &mut p));
        let cluster = o.opt("cluster", &mut p, cluster::parse);
        o.finish(&mut p);
        binds::check(
            pubsub.as_ref(),
            tasks.as_deref().unwrap_or_default(),
            &mut p,
        );

        match (app_type, args, tasks) {
            (Some(app_type), Some(args), Some(tasks)) if p.is_empty() => Ok(Manifest {
                app: app.to_owned(),
                app_type,
                args,
                version,
                engine,
                pubsub,
                tasks,
                security,
                cluster,
            }),
            _ => {
                if p.is_empty() {
                    // Unreachable by construction (a missing part always records why), but an
                    // error must never come without a reason.
                    p.add("", "the manifest is incomplete");
                }
                Err(p.into_error(app))
            }
        }
    }

    /// The task named `name`.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.tasks.get(i))
    }
}
