//! How a worker of each app type is started (PROTOCOL.md §1 environment).

use std::path::{Path, PathBuf};

use super::io::SpawnSpec;
use super::NodeConfig;
use crate::engine::Backend;
use crate::ids::WorkerId;
use crate::manifest::{AppType, Manifest};

/// What a Python worker runs (`python -c ENTRY --socket S CODE`): `-m cocaine.worker` does
/// the same, but `runpy` imports `importlib.util` (with `contextlib`, `collections`,
/// `functools`), ~9 ms of CPU at every worker's start that nothing else needs.
pub const PYTHON_WORKER_ENTRY: &str = "import cocaine.worker as w; w.run()";

pub(super) fn spec(config: &NodeConfig, manifest: &Manifest, worker: WorkerId) -> SpawnSpec {
    let socket = config.run_dir.join(format!("{worker}.sock"));
    let code = &manifest.args.path;
    let socket_arg = socket.display().to_string();
    let mut env = vec![
        ("COCAINE_SOCKET".to_owned(), socket_arg.clone()),
        ("COCAINE_WORKER_ID".to_owned(), worker.to_string()),
        ("COCAINE_APP".to_owned(), manifest.app.clone()),
        (
            "COCAINE_HEARTBEAT_MS".to_owned(),
            manifest.engine.heartbeat_interval.as_millis().to_string(),
        ),
        (
            "COCAINE_TIMEOUT_MS".to_owned(),
            manifest.engine.heartbeat_timeout.as_millis().to_string(),
        ),
        // A worker that sends more than this is killed, so SDKs must know the bound.
        (
            "COCAINE_MAX_MESSAGE".to_owned(),
            manifest.engine.max_message.to_string(),
        ),
        // The most jobs the worker is given at once: at 1 an SDK may run handlers on the
        // thread that reads the channel instead of handing each job to another thread.
        (
            "COCAINE_CONCURRENCY".to_owned(),
            manifest.engine.concurrency.to_string(),
        ),
    ];
    // Only a manifest that says so sets it: without the key the node's own environment
    // (which every worker inherits) decides, as a node-wide default.
    if let Some(inline) = manifest.engine.inline {
        let value = if inline { "1" } else { "0" };
        env.push(("COCAINE_INLINE".to_owned(), value.to_owned()));
    }
    let path = code.display().to_string();
    let argv = match (manifest.app_type, manifest.engine.backend) {
        (AppType::Python, _) => {
            if let Some(sdk) = &config.python_path {
                env.push(("PYTHONPATH".to_owned(), sdk.display().to_string()));
            }
            vec![
                config.python.clone(),
                "-c".into(),
                PYTHON_WORKER_ENTRY.into(),
                "--socket".into(),
                socket_arg,
                path,
            ]
        }
        (AppType::Javascript, _) => script_worker(
            "node",
            config.javascript_sdk.as_deref(),
            "cocaine-worker.js",
            "cocaine-worker-js",
            socket_arg,
            path,
        ),
        (AppType::Perl, _) => script_worker(
            "perl",
            config.perl_sdk.as_deref(),
            "cocaine-worker-perl",
            "cocaine-worker-perl",
            socket_arg,
            path,
        ),
        (AppType::Binary, _) => vec![path, "--socket".into(), socket_arg],
        // The library, then the manifest's `args` as written, for `cocaine_create`.
        (AppType::Native, Backend::Process) => {
            let host = config.native_host.as_ref().map(|p| p.display().to_string());
            vec![
                host.unwrap_or_else(|| "cocaine-native-host".to_owned()),
                "--socket".into(),
                socket_arg,
                path,
                manifest.args.raw.clone(),
            ]
        }
        (AppType::Native, Backend::Thread) => vec![path, manifest.args.raw.clone()],
    };
    SpawnSpec {
        worker,
        app: manifest.app.clone(),
        backend: manifest.engine.backend,
        argv,
        env,
        cwd: Some(working_dir(manifest.app_type, code)),
        socket,
        fork: manifest.app_type == AppType::Python
            && manifest.engine.backend == Backend::Process
            && manifest.engine.fork_server,
    }
}

/// `interpreter SDK/bin/SCRIPT --socket S CODE` with the SDK's folder, else the SDK's
/// installed command `INSTALLED --socket S CODE` from PATH.
fn script_worker(
    interpreter: &str,
    sdk: Option<&Path>,
    script: &str,
    installed: &str,
    socket: String,
    code: String,
) -> Vec<String> {
    let mut argv = match sdk {
        Some(dir) => vec![
            interpreter.to_owned(),
            dir.join("bin").join(script).display().to_string(),
        ],
        None => vec![installed.to_owned()],
    };
    argv.extend(["--socket".to_owned(), socket, code]);
    argv
}

/// A worker runs in its code's folder: a program's or a module file's parent folder, or a
/// Python or JavaScript package's own folder. Decided from the path alone (the core touches
/// no disk).
fn working_dir(app_type: AppType, code: &Path) -> PathBuf {
    let is_package =
        matches!(app_type, AppType::Python | AppType::Javascript) && code.extension().is_none();
    if is_package {
        code.to_path_buf()
    } else {
        code.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| code.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_workers_run_through_their_sdk_or_from_path() {
        let with_sdk = script_worker(
            "node",
            Some(Path::new("/opt/js")),
            "cocaine-worker.js",
            "cocaine-worker-js",
            "/run/w.sock".into(),
            "/srv/app.js".into(),
        );
        assert_eq!(
            with_sdk,
            [
                "node",
                "/opt/js/bin/cocaine-worker.js",
                "--socket",
                "/run/w.sock",
                "/srv/app.js"
            ]
        );
        let installed = script_worker(
            "perl",
            None,
            "cocaine-worker-perl",
            "cocaine-worker-perl",
            "/run/w.sock".into(),
            "/srv/app.pl".into(),
        );
        assert_eq!(
            installed,
            [
                "cocaine-worker-perl",
                "--socket",
                "/run/w.sock",
                "/srv/app.pl"
            ]
        );
    }

    #[test]
    fn workers_run_beside_their_code() {
        let dir = |t, p: &str| working_dir(t, Path::new(p));
        assert_eq!(
            dir(AppType::Binary, "/srv/bin/echo-worker"),
            Path::new("/srv/bin")
        );
        assert_eq!(
            dir(AppType::Python, "/srv/app/main.py"),
            Path::new("/srv/app")
        );
        assert_eq!(
            dir(AppType::Python, "/srv/app/package"),
            Path::new("/srv/app/package")
        );
        assert_eq!(
            dir(AppType::Javascript, "/srv/app/package"),
            Path::new("/srv/app/package")
        );
        assert_eq!(
            dir(AppType::Javascript, "/srv/app/main.mjs"),
            Path::new("/srv/app")
        );
        assert_eq!(
            dir(AppType::Perl, "/srv/app/echo.pl"),
            Path::new("/srv/app")
        );
        assert_eq!(
            dir(AppType::Native, "/srv/lib/libecho.so"),
            Path::new("/srv/lib")
        );
    }
}
