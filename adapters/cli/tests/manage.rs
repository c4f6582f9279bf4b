//! The management commands against a real node: `cocaine node --control ... --store ...`
//! with no app, then a Rust echo app deployed with its package, listed, described, called
//! by name, redeployed, scheduled, removed.
//!
//! The echo worker is `cocaine-echo-worker` (crate `cocaine-worker`), found beside the
//! `cocaine` binary as `cocaine bench` finds it, and built first if it is not there.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

const COCAINE: &str = env!("CARGO_BIN_EXE_cocaine");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `cocaine-echo-worker` from the same target folder as `cocaine`.
fn echo_worker() -> PathBuf {
    let worker = Path::new(COCAINE).with_file_name("cocaine-echo-worker");
    if !worker.is_file() {
        let profile_dir = Path::new(COCAINE).parent().expect("a folder");
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "-p",
            "cocaine-worker",
            "--bin",
            "cocaine-echo-worker",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building cocaine-echo-worker failed");
    }
    assert!(worker.is_file(), "{} is missing", worker.display());
    worker
}

/// A node on free ports, its log lines arriving on a channel, stopped when dropped.
struct Node {
    child: Child,
    control: String,
    lines: Receiver<String>,
}

impl Node {
    fn start(store: &Path, run_dir: &Path) -> Node {
        let control = format!("tcp://127.0.0.1:{}", free_port());
        let mut child = Command::new(COCAINE)
            .args([
                "node",
                "--log-level",
                "info",
                "--control",
                &control,
                "--store",
            ])
            .arg(store)
            .arg("--run-dir")
            .arg(run_dir)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the node starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("node: {line}");
                // Keep draining after the test stops listening: a full pipe would block
                // the node.
                let _ = tx.send(line);
            }
        });
        let node = Node {
            child,
            control,
            lines,
        };
        node.wait_for(&format!("control endpoint listening on {}", node.control));
        node
    }

    /// Waits for a log line holding `needle`, at most 30 s.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no log line with {needle:?} in 30 s"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the node exited before saying {needle:?}")
                }
            }
        }
    }

    /// Runs `cocaine ARGS --node <this node>`.
    fn cocaine(&self, args: &[&str]) -> Run {
        run(Command::new(COCAINE)
            .args(args)
            .args(["--node", &self.control]))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid. SIGTERM: the node stops its workers.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// What a `cocaine` command did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self.stdout
    }

    fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn fails(self, code: i32) -> String {
        assert_eq!(self.code, Some(code), "stdout: {}", self.stdout);
        self.stderr
    }
}

fn run(command: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command.stdin(Stdio::null()).output().expect("cocaine runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn write_manifest(path: &Path, version: u64, endpoint: &str) {
    let json = format!(
        r#"{{"type": "binary", "args": "local://bin/echo-worker", "version": {version},
            "engine": {{"pool-limit": 1}},
            "tasks": {{"echo": {{"type": "native-server", "endpoint": "{endpoint}"}},
                       "later": {{"type": "manual-scheduler"}}}}}}"#
    );
    std::fs::write(path, json).expect("manifest written");
}

#[test]
fn deploy_list_info_call_schedule_remove() {
    let worker = echo_worker();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let node = Node::start(&dir.path().join("store"), &dir.path().join("run"));

    // The package: the worker binary, executable, under bin/.
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(package.join("bin")).expect("package folder");
    std::fs::copy(&worker, package.join("bin/echo-worker")).expect("worker copied");
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let manifest = dir.path().join("echo.json");
    write_manifest(&manifest, 1, &endpoint);
    let package_arg = package.to_str().expect("a UTF-8 path");
    let manifest_arg = manifest.to_str().expect("a UTF-8 path");

    let out = node
        .cocaine(&["deploy", manifest_arg, "--package", package_arg])
        .ok();
    assert_eq!(out, "deployed echo version 1 (running)\n");

    // list: a table, and JSON for scripts.
    let table = node.cocaine(&["list"]).ok();
    assert!(table.starts_with("APP "), "{table}");
    let row = table.lines().nth(1).expect("a row");
    for word in ["echo", "1", "store", "running", &format!("echo={endpoint}")] {
        assert!(row.contains(word), "{word:?} not in {row:?}");
    }
    let list = node.cocaine(&["list", "--json"]).json();
    assert_eq!(list[0]["app"], "echo");
    assert_eq!(list[0]["origin"], "store");
    assert_eq!(list[0]["tasks"]["echo"]["endpoint"], endpoint.as_str());

    // info: the node, then the app.
    let about_node = node.cocaine(&["info"]).ok();
    assert!(about_node.starts_with("uptime  "), "{about_node}");
    assert!(about_node.contains("echo"), "{about_node}");
    let node_json = node.cocaine(&["info", "--json"]).json();
    assert!(node_json["uptime_ms"].is_u64(), "{node_json}");

    // call by name: the app's native-server task.
    // (The reply ends its line; --raw prints the exact bytes.)
    let reply = node.cocaine(&["call", "echo", "echo", "hello"]).ok();
    assert_eq!(reply, "hello\n");
    let about_app = node.cocaine(&["info", "echo"]).ok();
    assert!(about_app.contains("state       running"), "{about_app}");
    let app_json = node.cocaine(&["info", "echo", "--json"]).json();
    assert_eq!(
        app_json["engine"]["tasks"]["echo"]["completed"], 1,
        "{app_json}"
    );
    let reply = node.cocaine(&["call", "echo", "--raw", "hello"]).ok();
    assert_eq!(reply, "hello");

    // $COCAINE_NODE stands for --node.
    let by_env = run(Command::new(COCAINE)
        .args(["list", "--json"])
        .env("COCAINE_NODE", &node.control));
    assert_eq!(by_env.json()[0]["app"], "echo");

    // A new version of a running app replaces it.
    write_manifest(&manifest, 2, &endpoint);
    let out = node
        .cocaine(&["deploy", manifest_arg, "--package", package_arg])
        .ok();
    assert_eq!(out, "redeployed echo version 2 (running)\n");
    assert_eq!(
        node.cocaine(&["call", "echo", "echo", "again"]).ok(),
        "again\n"
    );
    let out = node.cocaine(&["reload", "echo"]).ok();
    assert_eq!(out, "reloaded echo version 2 (running)\n");

    // A job an hour away: listed with the app, then cancelled.
    let id = node
        .cocaine(&["schedule", "echo", "later", "--after", "1h", "body"])
        .ok();
    let id = id.trim();
    assert!(!id.is_empty());
    let app_json = node.cocaine(&["info", "echo", "--json"]).json();
    assert_eq!(app_json["scheduled"][0]["id"], id, "{app_json}");
    assert_eq!(
        node.cocaine(&["unschedule", id]).ok(),
        format!("unscheduled {id}\n")
    );
    let err = node.cocaine(&["unschedule", id]).fails(1);
    assert!(err.starts_with("error 404: "), "{err}");
    let err = node
        .cocaine(&["schedule", "echo", "echo", "--at", "2099-01-01T00:00:00Z"])
        .fails(1);
    assert!(err.starts_with("error 400: "), "{err}");

    // Without a package, with an absolute path to the worker; no native-server to call.
    let quiet = dir.path().join("quiet.json");
    let json = serde_json::json!({
        "type": "binary",
        "args": format!("local://{}", worker.display()),
        "tasks": {"later": {"type": "manual-scheduler"}}
    });
    std::fs::write(&quiet, json.to_string()).expect("manifest written");
    let out = node
        .cocaine(&[
            "deploy",
            quiet.to_str().expect("a UTF-8 path"),
            "--name",
            "q",
        ])
        .ok();
    assert_eq!(out, "deployed q version 0 (running)\n");
    let err = node.cocaine(&["call", "q"]).fails(1);
    assert_eq!(
        err,
        "cocaine call: app \"q\" has no native-server or zeromq-server task to call\n"
    );
    assert_eq!(node.cocaine(&["rm", "q"]).ok(), "removed q\n");

    // Removed: gone from the list, and every use of the name is a 404.
    assert_eq!(node.cocaine(&["rm", "echo"]).ok(), "removed echo\n");
    assert_eq!(node.cocaine(&["list"]).ok(), "no apps\n");
    for args in [
        &["rm", "echo"][..],
        &["reload", "echo"],
        &["info", "echo"],
        &["call", "echo"],
    ] {
        let err = node.cocaine(args).fails(1);
        assert!(err.starts_with("error 404: "), "{args:?}: {err}");
    }
}

#[test]
fn bad_usage_sends_nothing_and_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let manifest = dir.path().join("broken.json");
    std::fs::write(&manifest, "{\"type\": ").expect("written");
    // No node listens there: a request would time out with exit 1, not 2.
    let node = format!("tcp://127.0.0.1:{}", free_port());
    let manifest_arg = manifest.to_str().expect("a UTF-8 path");
    let cocaine = |args: &[&str]| {
        run(Command::new(COCAINE)
            .args(args)
            .args(["--node", &node, "--timeout", "5"]))
    };

    let err = cocaine(&["deploy", manifest_arg]).fails(2);
    assert!(err.contains("broken.json: not JSON"), "{err}");
    let err = cocaine(&["deploy", manifest_arg, "--name", "a/b"]).fails(2);
    assert!(err.contains("--name: app name \"a/b\""), "{err}");
    std::fs::write(&manifest, "{}").expect("written");
    let missing = dir.path().join("missing");
    let err = cocaine(&[
        "deploy",
        manifest_arg,
        "--package",
        missing.to_str().unwrap(),
    ])
    .fails(2);
    assert!(err.contains("--package: "), "{err}");
    let err = cocaine(&["schedule", "a", "t", "--after", "soon"]).fails(2);
    assert!(err.contains("duration \"soon\""), "{err}");
    cocaine(&["schedule", "a", "t"]).fails(2);
}

#[test]
fn no_node_is_found_at_once() {
    // Nothing listens: said without waiting for the reply's timeout.
    let node = format!("tcp://127.0.0.1:{}", free_port());
    let started = Instant::now();
    for args in [
        &["list"][..],
        &["info", "echo"],
        &["rm", "echo"],
        &["call", "echo"],
    ] {
        let err = run(Command::new(COCAINE)
            .args(args)
            .args(["--node", &node, "--timeout", "600"]))
        .fails(1);
        assert!(
            err.contains(&format!("nothing listens at {node}")) && err.contains("cocaine node"),
            "{args:?}: {err}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(600));
    // An endpoint that cannot be one is bad usage.
    let err = run(Command::new(COCAINE).args(["list", "--node", "tcp://127.0.0.1:99999"])).fails(2);
    assert!(err.contains("99999"), "{err}");
}

#[test]
fn a_silent_node_is_a_timeout() {
    // Something accepts the connection but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let node = format!("tcp://{}", listener.local_addr().expect("an address"));
    let started = Instant::now();
    let err =
        run(Command::new(COCAINE).args(["list", "--node", &node, "--timeout", "0.5"])).fails(1);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        err,
        format!(
            "cocaine list: no answer from {node} within 0.5 s \
             (is the node running with --control {node}?)\n"
        )
    );
}
