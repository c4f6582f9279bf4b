//! `cocaine node`: load manifests, open the app store and restore what it holds, follow a
//! watched folder, start the node on a runtime, stop cleanly on a signal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use cocaine_core::manifest::Manifest;
use cocaine_core::node::auth::AuthMode;
use cocaine_core::node::{AppOrigin, Input, Node, NodeConfig, Output};
use cocaine_core::process::LogLevel;
use cocaine_os::folder::FolderWatcher;
use cocaine_os::host::{Reaction, Setup};
use cocaine_os::inbox::Inbox;
use cocaine_os::key_folder::KeyFolder;
use cocaine_os::store::restore_inputs;
use cocaine_store::Store;

use crate::log::{parse_level, Logger};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// One `mio::Poll` loop.
    Mio,
    /// One async task on smol.
    Smol,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Manifest files, or folders whose *.json files are manifests. The app is named after
    /// the file (without .json) unless --name is given (one manifest only). These apps live
    /// as long as this run and are not stored; one that cannot start stops the node.
    manifests: Vec<PathBuf>,
    /// The app's name, for a single manifest.
    #[arg(long)]
    name: Option<String>,
    /// Which event loop drives the node.
    #[arg(long, value_enum, default_value = "mio")]
    runtime: Runtime,
    /// error, warn, info or debug.
    #[arg(long, default_value = "info", value_parser = parse_level)]
    log_level: LogLevel,
    /// Where worker sockets go (default: a fresh folder under /tmp, removed at exit).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// The Python interpreter for python apps.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The folder holding the `cocaine` Python package (default: found beside the binary's
    /// source tree, or $COCAINE_PYTHON_PATH).
    #[arg(long)]
    python_path: Option<PathBuf>,
    /// The program that runs native apps with `backend: process` (default:
    /// $COCAINE_NATIVE_HOST, else `cocaine-native-host` beside this binary, else on PATH).
    #[arg(long)]
    native_host: Option<PathBuf>,
    /// The host name in pubsub envelopes (default: the system's).
    #[arg(long)]
    hostname: Option<String>,
    /// The app store: apps deployed over control and scheduled jobs, restored at start
    /// (created if missing; default: /var/lib/cocaine for root, else
    /// $XDG_STATE_HOME/cocaine or ~/.local/state/cocaine).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// An address of the control endpoint; repeat for several; `none` for no control.
    #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_CONTROL)]
    control: Vec<String>,
    /// A folder of manifests to follow: each *.json file is an app named after the file,
    /// deployed when it appears or changes, removed when it goes away.
    #[arg(long, value_name = "DIR")]
    watch: Option<PathBuf>,
    /// A folder of `<user>.pem` public keys of the users who may sign requests, followed
    /// for changes (docs/security.md).
    #[arg(long, value_name = "DIR")]
    keys: Option<PathBuf>,
    /// Whether control requests must be signed: required, optional or off (default:
    /// optional when every control address is local to the machine, else required).
    #[arg(long, value_name = "MODE", value_parser = parse_auth)]
    auth: Option<AuthMode>,
}

fn parse_auth(text: &str) -> Result<AuthMode, String> {
    AuthMode::parse(text).ok_or_else(|| format!("{text:?}: use required, optional or off"))
}

const DEFAULT_CONTROL: &str = "tcp://127.0.0.1:5000";

pub fn run(args: NodeArgs) -> ExitCode {
    let logger = Logger {
        max: args.log_level,
    };
    let manifests = match load(&args) {
        Ok(m) => m,
        Err(e) => {
            logger.log(LogLevel::Error, &e);
            return ExitCode::from(2);
        }
    };
    let control = match control_addresses(&args.control) {
        Ok(c) => c,
        Err(e) => {
            logger.log(LogLevel::Error, &e);
            return ExitCode::from(2);
        }
    };
    let store_root = args.store.clone().unwrap_or_else(Store::default_root);
    let (store, restored) = match open_store(&store_root) {
        Ok(s) => s,
        Err(e) => {
            logger.log(LogLevel::Error, &e);
            return ExitCode::from(2);
        }
    };
    let inbox = match Inbox::new() {
        Ok(inbox) => inbox,
        Err(e) => {
            logger.log(
                LogLevel::Error,
                &format!("cannot set up the node's inbox: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    let run_dir = match &args.run_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("cocaine-{}", std::process::id())),
    };
    if let Err(e) = std::fs::create_dir_all(&run_dir) {
        logger.log(
            LogLevel::Error,
            &format!("cannot create the run folder {}: {e}", run_dir.display()),
        );
        return ExitCode::from(2);
    }
    let config = NodeConfig {
        hostname: args.hostname.clone().unwrap_or_else(hostname),
        run_dir: run_dir.clone(),
        python: args.python.clone(),
        python_path: args.python_path.clone().or_else(find_python_sdk),
        javascript_sdk: find_sdk("COCAINE_JAVASCRIPT_SDK", "javascript", "cocaine-worker.js"),
        perl_sdk: find_sdk("COCAINE_PERL_SDK", "perl", "cocaine-worker-perl"),
        native_host: args.native_host.clone().or_else(find_native_host),
        control,
        control_auth: args.auth,
        ..NodeConfig::default()
    };
    // Started before the node so that its first deploys wait in the inbox, behind the
    // command-line and restored apps.
    let watcher = match &args.watch {
        Some(dir) => {
            let log = Box::new(move |level, message: &str| logger.log(level, message));
            match FolderWatcher::start(dir, inbox.clone(), log) {
                Ok(w) => Some(w),
                Err(e) => {
                    logger.log(LogLevel::Error, &e.to_string());
                    cleanup(&args, &run_dir);
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let key_folder = match &args.keys {
        Some(dir) => {
            let log = Box::new(move |level, message: &str| logger.log(level, message));
            match KeyFolder::start(dir, inbox.clone(), log) {
                Ok(k) => Some(k),
                Err(e) => {
                    logger.log(LogLevel::Error, &format!("--keys: {e}"));
                    cleanup(&args, &run_dir);
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let mut waiting: BTreeSet<String> = manifests.iter().map(|m| m.app.clone()).collect();
    let mut failed = false;
    let first: Vec<Input> = manifests
        .into_iter()
        .map(|m| Input::Deploy {
            manifest: Box::new(m),
            origin: AppOrigin::CommandLine,
        })
        .chain(restored)
        .collect();
    // Up means every command-line app started and every control endpoint listens.
    let mut controls = config.control.len();
    if waiting.is_empty() && controls == 0 {
        logger.log(LogLevel::Info, UP);
    }
    let mut observe = |output: &Output| -> Reaction {
        match output {
            Output::Log { level, message } => logger.log(*level, message),
            // The last command-line app to start (restored and watched apps do not count).
            // (The guard removes the app whatever follows: it must run first.)
            Output::AppStarted { app }
                if waiting.remove(app) && waiting.is_empty() && controls == 0 =>
            {
                logger.log(LogLevel::Info, UP);
            }
            Output::ControlReady { .. } => {
                controls = controls.saturating_sub(1);
                if controls == 0 && waiting.is_empty() {
                    logger.log(LogLevel::Info, UP);
                }
            }
            Output::DeployFailed { app, reason } => {
                logger.log(LogLevel::Error, &format!("{app}: cannot start: {reason}"));
                if waiting.remove(app) {
                    // An app given at start that cannot start stops the node: the operator
                    // asked for it and must hear about it, not find it missing later.
                    failed = true;
                    return Reaction::Shutdown;
                }
            }
            Output::Fatal { reason } => {
                logger.log(LogLevel::Error, reason);
                failed = true;
                return Reaction::Shutdown;
            }
            Output::AppStopped { app } => logger.log(LogLevel::Info, &format!("{app}: stopped")),
            Output::Stopped => logger.log(LogLevel::Info, "node stopped"),
            _ => {}
        }
        Reaction::Continue
    };
    let setup = Setup {
        first,
        store: Some(store),
        inbox,
    };
    let result = match args.runtime {
        Runtime::Mio => {
            cocaine_mio::run(Node::new(config), setup, &mut observe).map_err(|e| e.to_string())
        }
        Runtime::Smol => {
            cocaine_smol::run(Node::new(config), setup, &mut observe).map_err(|e| e.to_string())
        }
    };
    drop(watcher);
    drop(key_folder);
    cleanup(&args, &run_dir);
    match result {
        Err(e) => {
            logger.log(LogLevel::Error, &e);
            ExitCode::FAILURE
        }
        Ok(()) if failed => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

const UP: &str = "node is up: every app started";

/// Removes the run folder, unless the operator chose it.
fn cleanup(args: &NodeArgs, run_dir: &Path) {
    if args.run_dir.is_none() {
        let _ = std::fs::remove_dir_all(run_dir);
    }
}

/// `--control` as `NodeConfig::control`: the addresses given, or none for `none`.
fn control_addresses(given: &[String]) -> Result<Vec<String>, String> {
    if given.iter().any(|a| a == "none") {
        if given.len() > 1 {
            return Err("--control none cannot be combined with other addresses".to_owned());
        }
        return Ok(Vec::new());
    }
    Ok(given.to_vec())
}

/// Opens (creating) the store at `root` and reads what it holds as the inputs that restore
/// it: one per app, then one per scheduled job.
fn open_store(root: &Path) -> Result<(Store, Vec<Input>), String> {
    let store = Store::open(root)
        .map_err(|e| format!("cannot open the store at {}: {e}", root.display()))?;
    let restored = restore_inputs(&store)
        .map_err(|e| format!("cannot read the store at {}: {e}", root.display()))?;
    Ok((store, restored))
}

/// Every manifest named on the command line, parsed, with all problems reported at once.
fn load(args: &NodeArgs) -> Result<Vec<Manifest>, String> {
    let mut files = Vec::new();
    for path in &args.manifests {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if args.name.is_some() && files.len() != 1 {
        return Err("--name needs exactly one manifest".to_owned());
    }
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let name = match &args.name {
            Some(n) => n.clone(),
            None => file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let json = match std::fs::read(&file) {
            Ok(j) => j,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let base = file
            .parent()
            .map(absolute)
            .unwrap_or_else(|| absolute(Path::new(".")));
        match Manifest::parse(&name, &json, Some(&base)) {
            Ok(m) => manifests.push(m),
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems.join("\n"))
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok && len > 0 {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        "localhost".to_owned()
    }
}

/// The Python SDK: `$COCAINE_PYTHON_PATH`, or `adapters/python` in a source tree that holds
/// this binary (a `cargo run` or `cargo build` checkout).
fn find_python_sdk() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("COCAINE_PYTHON_PATH") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|dir| dir.join("adapters/python"))
        .find(|candidate| candidate.join("cocaine/__init__.py").is_file())
}

/// A script language's worker SDK (`javascript`, `perl`): `$VAR`, or `adapters/<name>` in
/// a source tree that holds this binary. None leaves the node to run the SDK's installed
/// command from PATH.
fn find_sdk(var: &str, name: &str, script: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|dir| dir.join("adapters").join(name))
        .find(|candidate| candidate.join("bin").join(script).is_file())
}

/// The native app host: `$COCAINE_NATIVE_HOST`, or `cocaine-native-host` beside this binary
/// (both are built into the same target folder). None leaves it to PATH.
fn find_native_host() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("COCAINE_NATIVE_HOST") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.parent()?.join("cocaine-native-host");
    beside.is_file().then_some(beside)
}
