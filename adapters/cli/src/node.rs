//! `cocaine node`: load manifests, open the app store and restore what it holds, follow a
//! watched folder, start the node on a runtime, stop cleanly on a signal.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use cocaine_core::manifest::Manifest;
use cocaine_core::node::auth::AuthMode;
use cocaine_core::node::{AppOrigin, DiscoveryConfig, Input, Node, NodeConfig, Output};
use cocaine_core::process::LogLevel;
use cocaine_os::folder::FolderWatcher;
use cocaine_os::host::{Reaction, Setup};
use cocaine_os::inbox::Inbox;
use cocaine_os::key_folder::KeyFolder;
use cocaine_os::store::restore_inputs;
use cocaine_store::Store;

use crate::check;
use crate::discovery::{self, DiscoveryArgs};
use crate::log::{parse_level, LogFormat, Logger};
use crate::python_sdk::PythonSdk;
use crate::run_dir::{self, RunDir};

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
    /// text (local RFC 3339 time, level, message) or json (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Where worker sockets go (default: a fresh `cocaine-run-<pid>` folder in the temporary
    /// folder, removed at exit; those of nodes that died are removed at start).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// The Python interpreter for python apps.
    #[arg(long, default_value = DEFAULT_PYTHON)]
    python: String,
    /// The folder holding the `cocaine` Python package (default: $COCAINE_PYTHON_PATH, else
    /// the one installed for a --python given, else the binary's source tree's
    /// `adapters/python`, else the one installed for python3).
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
    /// $XDG_STATE_HOME/cocaine or ~/.local/state/cocaine). A node given manifests opens a
    /// store only with --store or --control.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// An address of the control endpoint; repeat for several; `none` for no control
    /// [default: tcp://127.0.0.1:5000 for a node without manifests; none for a node given
    /// manifests].
    #[arg(long, value_name = "ENDPOINT")]
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
    /// How long a session key lives from its open, in seconds (docs/security.md).
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_seconds)]
    session_ttl: Duration,
    /// How long a session key may go unused before it ends, in seconds.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_seconds)]
    session_idle: Duration,
    /// Whether announcements are signed with the node's key and checked against the
    /// `<node_id>.pem` keys of --keys: off, optional (sign, check signed ones) or required
    /// (sign, drop unsigned ones) (docs/cluster.md). Needs a state folder for the node's key.
    #[arg(long, value_name = "MODE", value_parser = parse_auth, default_value = "off")]
    cluster_auth: AuthMode,
    /// Serve the node's statistics in the Prometheus text format at GET /metrics on this
    /// TCP address (`127.0.0.1:9101` or `tcp://127.0.0.1:9101`); repeat for several.
    #[arg(long, value_name = "ADDRESS", value_parser = parse_metrics)]
    metrics: Vec<String>,
    #[command(flatten)]
    cluster: DiscoveryArgs,
}

/// `--metrics`: `HOST:PORT` or `tcp://HOST:PORT`, as the node binds it.
fn parse_metrics(text: &str) -> Result<String, String> {
    let address = if text.contains("://") {
        text.to_owned()
    } else {
        format!("tcp://{text}")
    };
    if !address.starts_with("tcp://") {
        return Err(format!("{text:?}: metrics are served over TCP: HOST:PORT"));
    }
    cocaine_core::manifest::Endpoint::parse(&address).map_err(|e| e.to_string())?;
    Ok(address)
}

/// `--session-ttl`, `--session-idle`: positive seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs < 1e9 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{text:?}: a number of seconds above 0")),
    }
}

fn parse_auth(text: &str) -> Result<AuthMode, String> {
    AuthMode::parse(text).ok_or_else(|| format!("{text:?}: use required, optional or off"))
}

const DEFAULT_CONTROL: &str = "tcp://127.0.0.1:5000";

/// The interpreter for python apps unless `--python` names another.
const DEFAULT_PYTHON: &str = "python3";

pub fn run(args: NodeArgs) -> ExitCode {
    let logger = Logger::new(args.log_level, args.log_format);
    match prepare(&args, &logger) {
        Ok(prepared) => serve(&args, &logger, prepared),
        Err(e) => {
            logger.log(LogLevel::Error, &e);
            ExitCode::from(2)
        }
    }
}

/// What a node needs before its loop starts, all checked: a problem here is exit 2 and no
/// node.
struct Prepared {
    manifests: Vec<Manifest>,
    control: Vec<String>,
    store: Option<Store>,
    restored: Vec<Input>,
    inbox: Inbox,
    run_dir: RunFolder,
    cluster: Option<DiscoveryConfig>,
    /// The node's key pair, when it keeps a state folder: read or made when first needed.
    own_key: Option<std::sync::Arc<cocaine_keys::files::LazyNodeKey>>,
}

fn prepare(args: &NodeArgs, logger: &Logger) -> Result<Prepared, String> {
    let manifests = load(args)?;
    let control = control_addresses(&args.control, !args.manifests.is_empty())?;
    let control = discovery::on_host(
        control,
        args.cluster.host.as_deref(),
        args.control.is_empty(),
    );
    let root = store_root(args, &control);
    let (store, restored, own_key) = match &root {
        Some(root) => {
            let (store, restored) = open_store(root)?;
            let key = std::sync::Arc::new(cocaine_keys::files::LazyNodeKey::new(root));
            (Some(store), restored, Some(key))
        }
        None => (None, Vec::new(), None),
    };
    if args.cluster_auth != AuthMode::Off {
        let Some(key) = &own_key else {
            return Err(format!(
                "--cluster-auth {} signs announcements with the node's key, which lives in its \
                 state folder: give --store",
                args.cluster_auth.name()
            ));
        };
        // Signing starts with the first announcement: make the pair now, off the start path.
        warm_own_key(key, root.as_deref().unwrap_or(Path::new(".")), logger);
    }
    let cluster = args.cluster.config(&control, root.as_deref())?;
    let mut restored = restored;
    if args.cluster.etcd.enabled() {
        args.cluster.etcd.checked()?;
        // Before the store's apps: a tombstone must be known when they are restored.
        let tombstones = args.cluster.etcd.tombstones(logger);
        restored.splice(0..0, tombstones);
    }
    let inbox = Inbox::new().map_err(|e| format!("cannot set up the node's inbox: {e}"))?;
    let run_dir = run_folder(args, logger)?;
    Ok(Prepared {
        manifests,
        control,
        store,
        restored,
        inbox,
        run_dir,
        cluster,
        own_key,
    })
}

/// Reads or makes the node's key pair (docs/security.md) on a thread of its own, and logs its
/// fingerprint or why it cannot be had (then each use logs its own failure).
fn warm_own_key(
    key: &std::sync::Arc<cocaine_keys::files::LazyNodeKey>,
    root: &Path,
    logger: &Logger,
) {
    let key_logger = logger.clone();
    let public = root.join(cocaine_keys::files::NODE_PUB);
    let done = move |result: Result<cocaine_keys::PrivateKey, cocaine_keys::KeyError>| {
        let message = result
            .and_then(|k| k.fingerprint())
            .map(|f| {
                (
                    LogLevel::Info,
                    format!("node key: {f} ({})", public.display()),
                )
            })
            .unwrap_or_else(|e| (LogLevel::Error, format!("the node's key pair: {e}")));
        key_logger.log(message.0, &message.1);
    };
    if let Err(e) = key.warm(done) {
        logger.log(
            LogLevel::Warn,
            &format!("node key: no thread to make it ahead: {e}"),
        );
    }
}

/// The seed of the node's session keys, from OpenSSL's random source; without one the node
/// refuses session-opens (503) and says so here.
fn session_seed(logger: &Logger) -> Option<cocaine_core::auth::session::Seed> {
    cocaine_keys::random::session_seed()
        .inspect_err(|e| logger.log(LogLevel::Error, &format!("no seed for session keys: {e}")))
        .ok()
}

fn serve(args: &NodeArgs, logger: &Logger, prepared: Prepared) -> ExitCode {
    let chosen = args.python != DEFAULT_PYTHON;
    let python_sdk = PythonSdk::find(&args.python, chosen, args.python_path.clone());
    logger.log(LogLevel::Info, &python_sdk.describe(&args.python));
    let config = NodeConfig {
        hostname: args.hostname.clone().unwrap_or_else(hostname),
        run_dir: prepared.run_dir.path().to_owned(),
        python: args.python.clone(),
        python_path: python_sdk.path(),
        javascript_sdk: find_sdk("COCAINE_JAVASCRIPT_SDK", "javascript", "cocaine-worker.js"),
        perl_sdk: find_sdk("COCAINE_PERL_SDK", "perl", "cocaine-worker-perl"),
        native_host: args.native_host.clone().or_else(find_native_host),
        control: prepared.control,
        control_auth: args.auth,
        metrics: args.metrics.clone(),
        host: args.cluster.host.clone(),
        discovery: prepared.cluster,
        sessions: cocaine_core::auth::session::SessionLimits {
            lifetime: args.session_ttl,
            idle: args.session_idle,
            ..Default::default()
        },
        session_seed: session_seed(logger),
        own_key: prepared.own_key.clone().map(|k| {
            cocaine_core::auth::NodeKeyHandle(k as std::sync::Arc<dyn cocaine_core::auth::NodeKey>)
        }),
        cluster_auth: args.cluster_auth,
        ..NodeConfig::default()
    };
    // Started before the node so that its first deploys wait in the inbox, behind the
    // command-line and restored apps.
    let watcher = match &args.watch {
        Some(dir) => {
            let watch_logger = logger.clone();
            let log = Box::new(move |level, message: &str| watch_logger.log(level, message));
            match FolderWatcher::start(dir, prepared.inbox.clone(), log) {
                Ok(w) => Some(w),
                Err(e) => {
                    logger.log(LogLevel::Error, &e.to_string());
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let key_folder = match &args.keys {
        Some(dir) => {
            let key_logger = logger.clone();
            let log = Box::new(move |level, message: &str| key_logger.log(level, message));
            match KeyFolder::start(dir, prepared.inbox.clone(), log) {
                Ok(k) => Some(k),
                Err(e) => {
                    logger.log(LogLevel::Error, &format!("--keys: {e}"));
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let etcd = match (&config.discovery, args.cluster.etcd.enabled()) {
        (Some(discovery), true) => {
            match args
                .cluster
                .etcd
                .start(discovery, prepared.inbox.clone(), logger)
            {
                Ok(thread) => Some(thread),
                Err(e) => {
                    logger.log(LogLevel::Error, &e);
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    let mut startup = Startup::new(&prepared.manifests, config.control.len(), logger);
    let first: Vec<Input> = prepared
        .manifests
        .into_iter()
        .map(|m| Input::Deploy {
            manifest: Box::new(m),
            origin: AppOrigin::CommandLine,
        })
        .chain(prepared.restored)
        .collect();
    let mut observe = |output: &Output| {
        if let (Output::Announce { bytes }, Some(etcd)) = (output, &etcd) {
            etcd.announce(bytes.clone());
        }
        startup.observe(output)
    };
    let setup = Setup {
        first,
        store: prepared.store,
        inbox: prepared.inbox,
    };
    let mut node = Node::new(config);
    if let Some(key) = prepared.own_key.clone() {
        // Opened with the node's key, read or made at the first sealed request (or sooner).
        node.set_sealing(key, Box::new(cocaine_keys::OsRandom));
    }
    let result = match args.runtime {
        Runtime::Mio => cocaine_mio::run(node, setup, &mut observe).map_err(|e| e.to_string()),
        Runtime::Smol => cocaine_smol::run(node, setup, &mut observe).map_err(|e| e.to_string()),
    };
    drop(watcher);
    drop(key_folder);
    // Revokes the node's lease: its peers forget it at once.
    drop(etcd);
    // The run folder goes once every worker is gone.
    drop(prepared.run_dir);
    match result {
        Err(e) => {
            logger.log(LogLevel::Error, &e);
            ExitCode::FAILURE
        }
        Ok(()) if startup.failed => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

const UP: &str = "node is up: every app started";

/// Follows the node's outputs through startup: says the node is up once every command-line
/// app started and every control endpoint listens (after the last app's own `started`
/// line), and stops the node when a command-line app or a control endpoint fails.
struct Startup<'a> {
    logger: &'a Logger,
    /// Command-line apps not started yet (restored and watched apps do not count).
    waiting: BTreeSet<String>,
    /// Control endpoints not listening yet.
    controls: usize,
    /// The app whose start made the node ready: up is said after its `started` line.
    up_after: Option<String>,
    said_up: bool,
    /// The last error logged, so that a fatal reason the core already logged is not repeated.
    last_error: Option<String>,
    failed: bool,
}

impl<'a> Startup<'a> {
    fn new(manifests: &[Manifest], controls: usize, logger: &'a Logger) -> Self {
        let mut startup = Self {
            logger,
            waiting: manifests.iter().map(|m| m.app.clone()).collect(),
            controls,
            up_after: None,
            said_up: false,
            last_error: None,
            failed: false,
        };
        if startup.ready() {
            startup.say_up();
        }
        startup
    }

    fn ready(&self) -> bool {
        self.waiting.is_empty() && self.controls == 0
    }

    fn say_up(&mut self) {
        if !self.said_up {
            self.said_up = true;
            self.logger.log(LogLevel::Info, UP);
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        if level == LogLevel::Error {
            self.last_error = Some(message.to_owned());
        }
        self.logger.log(level, message);
    }

    /// Whether the last error logged ends with `reason`.
    fn already_said(&self, reason: &str) -> bool {
        self.last_error
            .as_deref()
            .is_some_and(|last| last.ends_with(reason))
    }

    fn observe(&mut self, output: &Output) -> Reaction {
        // The core reports an app started, then logs it: up comes after that line.
        if let Some(app) = self.up_after.take() {
            if let Output::Log { level, message } = output {
                if message.starts_with(&format!("{app}: started")) {
                    self.log(*level, message);
                    self.say_up();
                    return Reaction::Continue;
                }
            }
            self.say_up();
        }
        match output {
            Output::Log { level, message } => self.log(*level, message),
            // (The guard removes the app whatever follows: it must run first.)
            Output::AppStarted { app } if self.waiting.remove(app) && self.ready() => {
                self.up_after = Some(app.clone());
            }
            Output::ControlReady { .. } => {
                self.controls = self.controls.saturating_sub(1);
                if self.ready() {
                    self.say_up();
                }
            }
            Output::DeployFailed { app, reason } => {
                // Said once: the core may have logged the reason as it happened.
                if !self.already_said(reason) {
                    self.log(LogLevel::Error, &format!("{app}: cannot start: {reason}"));
                }
                if self.waiting.remove(app) {
                    // An app given at start that cannot start stops the node: the operator
                    // asked for it and must hear about it, not find it missing later.
                    self.failed = true;
                    return Reaction::Shutdown;
                }
            }
            Output::Fatal { reason } => {
                if !self.already_said(reason) {
                    self.log(LogLevel::Error, reason);
                }
                if reason.contains("control endpoint") && reason.contains("in use") {
                    self.log(LogLevel::Error, CONTROL_IN_USE);
                }
                self.failed = true;
                return Reaction::Shutdown;
            }
            Output::AppStopped { app } => self.log(LogLevel::Info, &format!("{app}: stopped")),
            Output::Stopped => self.log(LogLevel::Info, "node stopped"),
            _ => {}
        }
        Reaction::Continue
    }
}

const CONTROL_IN_USE: &str = "another node (or another program) listens there: talk to it \
     (cocaine list --node ENDPOINT), stop it, or give this node another --control ENDPOINT \
     or --control none";

/// Where worker sockets go: the folder given (kept), or a fresh one of this node's own.
enum RunFolder {
    Given(PathBuf),
    Own(RunDir),
}

impl RunFolder {
    fn path(&self) -> &Path {
        match self {
            RunFolder::Given(path) => path,
            RunFolder::Own(dir) => dir.path(),
        }
    }
}

/// `--run-dir`, or a fresh folder in the temporary folder once the folders of nodes that
/// died there are swept away.
fn run_folder(args: &NodeArgs, logger: &Logger) -> Result<RunFolder, String> {
    if let Some(dir) = &args.run_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the run folder {}: {e}", dir.display()))?;
        return Ok(RunFolder::Given(dir.clone()));
    }
    let tmp = std::env::temp_dir();
    for gone in run_dir::sweep(&tmp) {
        logger.log(
            LogLevel::Info,
            &format!("removed {}, left by a node that is gone", gone.display()),
        );
    }
    RunDir::create(&tmp)
        .map(RunFolder::Own)
        .map_err(|e| format!("cannot create a run folder in {}: {e}", tmp.display()))
}

/// `--control` as `NodeConfig::control`: the addresses given, or none for `none`. Without
/// the flag, a node given manifests runs just them (no control: a second node, the service,
/// can take the default address), and a node without manifests is the service.
fn control_addresses(given: &[String], has_manifests: bool) -> Result<Vec<String>, String> {
    if given.iter().any(|a| a == "none") {
        if given.len() > 1 {
            return Err("--control none cannot be combined with other addresses".to_owned());
        }
        return Ok(Vec::new());
    }
    if given.is_empty() {
        return Ok(if has_manifests {
            Vec::new()
        } else {
            vec![DEFAULT_CONTROL.to_owned()]
        });
    }
    for address in given {
        cocaine_core::manifest::Endpoint::parse(address)
            .map_err(|e| format!("--control {address}: {e}"))?;
    }
    Ok(given.to_vec())
}

/// The store to open: `--store`, else the default one unless this node only runs the
/// manifests it was given (no control, so nothing could be deployed into it).
fn store_root(args: &NodeArgs, control: &[String]) -> Option<PathBuf> {
    let wanted = args.manifests.is_empty() || !control.is_empty();
    args.store
        .clone()
        .or_else(|| wanted.then(Store::default_root))
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
    let files = manifest_files(&args.manifests)?;
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
        match load_one(&name, &file) {
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

/// The files named: files as they are, folders as their `*.json` files in name order.
fn manifest_files(given: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in given {
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
    Ok(files)
}

/// One manifest, its relative paths resolved against the folder it really is in (`echo.json`
/// and `./echo.json` alike), its code checked to exist.
fn load_one(name: &str, file: &Path) -> Result<Manifest, String> {
    let json = std::fs::read(file).map_err(|e| e.to_string())?;
    let canonical = std::fs::canonicalize(file).map_err(|e| e.to_string())?;
    let base = canonical.parent().unwrap_or(Path::new("/"));
    let manifest = Manifest::parse(name, &json, Some(base)).map_err(|e| e.to_string())?;
    match check::missing_code(&manifest) {
        Some(missing) => Err(format!("app {name:?}: {missing}")),
        None => Ok(manifest),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NodeArgs,
    }

    fn args(words: &[&str]) -> NodeArgs {
        Cli::try_parse_from(std::iter::once("node").chain(words.iter().copied()))
            .unwrap()
            .args
    }

    fn control(words: &[&str]) -> Result<Vec<String>, String> {
        let a = args(words);
        control_addresses(&a.control, !a.manifests.is_empty())
    }

    #[test]
    fn a_node_with_manifests_binds_control_only_when_asked() {
        assert_eq!(control(&[]), Ok(vec![DEFAULT_CONTROL.to_owned()]));
        assert_eq!(control(&["echo.json"]), Ok(vec![]));
        assert_eq!(
            control(&["echo.json", "--control", "tcp://127.0.0.1:6000"]),
            Ok(vec!["tcp://127.0.0.1:6000".to_owned()])
        );
        assert_eq!(control(&["--control", "none"]), Ok(vec![]));
        assert!(control(&["--control", "none", "--control", "tcp://127.0.0.1:1"]).is_err());
        let bad = control(&["--control", "tcp://127.0.0.1:99999"]).unwrap_err();
        assert!(
            bad.starts_with("--control tcp://127.0.0.1:99999: "),
            "{bad}"
        );
    }

    #[test]
    fn a_node_with_manifests_opens_a_store_only_when_asked() {
        let store = |words: &[&str]| {
            let a = args(words);
            let control = control_addresses(&a.control, !a.manifests.is_empty()).unwrap();
            store_root(&a, &control)
        };
        assert_eq!(store(&[]), Some(Store::default_root()));
        assert_eq!(store(&["echo.json"]), None);
        assert_eq!(
            store(&["echo.json", "--control", "tcp://127.0.0.1:6000"]),
            Some(Store::default_root())
        );
        assert_eq!(
            store(&["echo.json", "--store", "/srv/s"]),
            Some(PathBuf::from("/srv/s"))
        );
    }
}
