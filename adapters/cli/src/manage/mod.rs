//! The management commands (`deploy`, `rm`, `reload`, `list`, `info`, `schedule`,
//! `unschedule`): each builds one control request (docs/control.md), sends it to the node's
//! control endpoint and prints the reply.
//!
//! Before sending, the endpoint is checked and probed (nothing listening is said at once, not
//! after the reply's timeout), and `deploy` checks the manifest with the core's parser and
//! that its code exists.
//!
//! Exit codes: 0 on an `ok` reply, 1 on an error reply (printed `error <code>: <message>`), no
//! node or no reply, 2 on bad usage (a bad endpoint, an unreadable or invalid manifest, code
//! that is not there, a package that cannot be packed: nothing was sent).

mod client;
pub mod lookup;
pub mod ops;
mod package;
mod peers;
mod render;
mod request;
mod table;
pub mod top;
mod when;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};
use cocaine_core::control::{check_app_name, When};
use cocaine_core::manifest::Manifest;
use serde_json::Value;

pub use client::ControlFailure;
pub use peers::{peers, PeersArgs};

use crate::identity::Identity;
use crate::{check, reach};

/// Where the node listens for control requests unless told otherwise.
pub const DEFAULT_NODE: &str = "tcp://127.0.0.1:5000";

/// How long to wait for most replies.
const DEFAULT_TIMEOUT_S: f64 = 30.0;
/// `deploy` and `reload` are answered once the app has started: its workers may take a while.
const START_TIMEOUT_S: f64 = 120.0;

/// The node to talk to, shared by every management command.
#[derive(Debug, Args)]
pub struct Target {
    /// The node's control endpoint (interface names allowed).
    #[arg(
        long,
        env = "COCAINE_NODE",
        default_value = DEFAULT_NODE,
        value_name = "ENDPOINT",
        value_parser = reach::connect_endpoint
    )]
    pub node: String,
    /// Give up after this many seconds without a reply [default: 30; 120 for deploy and
    /// reload, which answer once the app has started].
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Give up after this many seconds if the node does not accept the connection (nothing
    /// listening is found at once).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout, default_value = "3")]
    pub connect_timeout: Duration,
    #[command(flatten)]
    pub identity: Identity,
}

impl Target {
    fn send(&self, default_s: f64, json: &[u8], frames: &[&[u8]]) -> Result<Value, CommandError> {
        let signer = self.identity.load().map_err(CommandError::Usage)?;
        self.reachable()?;
        let timeout = self.timeout.unwrap_or(Duration::from_secs_f64(default_s));
        let Some(signer) = signer else {
            return client::request(&self.node, timeout, json, frames)
                .map_err(CommandError::Control);
        };
        let stamp = cocaine_keys::stamp().map_err(|e| CommandError::Failed(e.to_string()))?;
        let (json, signature) = cocaine_core::auth::sign_control(json, &stamp, &signer)
            .map_err(|e| CommandError::Failed(e.to_string()))?;
        let mut frames = frames.to_vec();
        frames.push(&signature);
        client::request(&self.node, timeout, &json, &frames).map_err(CommandError::Control)
    }

    /// Fails at once when no node listens at `--node`, rather than after `--timeout`.
    fn reachable(&self) -> Result<(), CommandError> {
        let address = cocaine_os::endpoint::resolve(&self.node)
            .map_err(|e| CommandError::Usage(format!("--node {}: {e}", self.node)))?;
        reach::probe(&address, self.connect_timeout).map_err(|why| {
            CommandError::Control(ControlFailure::Transport(format!(
                "{why}: is a node running there? Start one with `cocaine node`, or give \
                 the node's control endpoint with --node ENDPOINT"
            )))
        })
    }
}

/// Parses `--timeout`: positive seconds, fractions allowed.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err("the timeout must be above 0".into());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Why a command failed: decides the exit code.
#[derive(Debug)]
pub enum CommandError {
    /// Nothing was sent: the command line or a file it names is wrong. Exit 2.
    Usage(String),
    /// The node said no, or did not answer. Exit 1.
    Control(ControlFailure),
    /// The node answered, but what it said does not allow going on. Exit 1.
    Failed(String),
}

/// Prints a failure and gives the exit code. An error reply prints as the node put it,
/// `error <code>: <message>`; anything else is prefixed with the command.
pub fn exit(command: &str, result: Result<(), CommandError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CommandError::Usage(message)) => {
            eprintln!("cocaine {command}: {message}");
            ExitCode::from(2)
        }
        Err(CommandError::Control(failure @ ControlFailure::Reply { .. })) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
        Err(
            CommandError::Control(ControlFailure::Transport(message))
            | CommandError::Failed(message),
        ) => {
            eprintln!("cocaine {command}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &Value) {
    // `Value`'s pretty printer cannot fail.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// `echo version 1 (running)`, from a deploy or reload reply.
fn started(reply: &Value) -> String {
    let version = match field(reply, "version") {
        Value::Null => String::new(),
        v => format!(" version {v}"),
    };
    format!(
        "{}{version} ({})",
        field(reply, "app").as_str().unwrap_or("?"),
        field(reply, "state").as_str().unwrap_or("?")
    )
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The app's manifest, a JSON file.
    manifest: PathBuf,
    /// A folder sent as the app's package; relative paths in the manifest (`local://app.py`)
    /// are resolved inside it on the node. `.git` and `__pycache__` folders are left out.
    #[arg(long, value_name = "DIR")]
    package: Option<PathBuf>,
    /// The app's name [default: the manifest's file name without its extension].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    target: Target,
}

pub fn deploy(args: DeployArgs) -> ExitCode {
    exit("deploy", run_deploy(&args))
}

fn run_deploy(args: &DeployArgs) -> Result<(), CommandError> {
    let app = match &args.name {
        Some(name) => name.clone(),
        None => app_name_of(&args.manifest)?,
    };
    check_app_name(&app).map_err(|e| {
        CommandError::Usage(match &args.name {
            Some(_) => format!("--name: {e}"),
            None => format!(
                "{e} (from the file name {}; give --name)",
                args.manifest.display()
            ),
        })
    })?;
    let shown = args.manifest.display();
    let manifest =
        std::fs::read(&args.manifest).map_err(|e| CommandError::Usage(format!("{shown}: {e}")))?;
    let json = request::deploy(&app, &manifest)
        .map_err(|e| CommandError::Usage(format!("{shown}: {e}")))?;
    let package = match &args.package {
        Some(dir) => {
            Some(package::pack(dir).map_err(|e| CommandError::Usage(format!("--package: {e}")))?)
        }
        None => None,
    };
    let same_machine = is_loopback(&args.target.node);
    validate(&app, &manifest, args.package.as_deref(), same_machine)
        .map_err(|why| CommandError::Usage(format!("{shown}: {why}")))?;
    let frames: Vec<&[u8]> = package.iter().map(Vec::as_slice).collect();
    let reply = args
        .target
        .send(START_TIMEOUT_S, &json, &frames)
        .map_err(|e| hint_package(e, args.package.is_some()))?;
    let verb = if field(&reply, "redeployed").as_bool() == Some(true) {
        "redeployed"
    } else {
        "deployed"
    };
    println!("{verb} {}", started(&reply));
    Ok(())
}

/// Checks the manifest as the node will (the core's parser), with relative paths resolved
/// inside the package, whose code must then be there (and absolute paths too when the node
/// runs on this machine): a mistake is found before anything is sent, not after the node's
/// reply.
fn validate(
    app: &str,
    manifest: &[u8],
    package: Option<&Path>,
    same_machine: bool,
) -> Result<(), String> {
    let base = package
        .map(|dir| std::fs::canonicalize(dir).map_err(|e| format!("--package: {e}")))
        .transpose()?;
    let parsed = Manifest::parse(app, manifest, base.as_deref()).map_err(|e| {
        let why = e.to_string();
        if base.is_none() && why.contains("relative path") {
            format!("{why}\n(or send the app's folder with --package DIR: relative paths resolve inside it)")
        } else {
            why
        }
    })?;
    let missing = match &base {
        Some(dir) => check::missing_in_package(&parsed, dir),
        None => None,
    };
    let missing = missing.or_else(|| same_machine.then(|| check::missing_code(&parsed)).flatten());
    match missing {
        Some(missing) => Err(format!("app {app:?}: {missing}")),
        None => Ok(()),
    }
}

/// Whether a control endpoint is on this machine's loopback, so that the node sees this
/// machine's files.
fn is_loopback(node: &str) -> bool {
    let Ok(address) = cocaine_os::endpoint::resolve(node) else {
        return false;
    };
    let host = address
        .strip_prefix("tcp://")
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'));
    match host {
        Some(host) => host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        // ipc:// and inproc:// are local by nature.
        None => !address.starts_with("tcp://"),
    }
}

/// The app name a manifest file gives: its file name without the last extension, as
/// `cocaine node` names apps (`echo.json` is `echo`).
fn app_name_of(manifest: &Path) -> Result<String, CommandError> {
    manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "{}: no file name to name the app after; give --name",
                manifest.display()
            ))
        })
}

/// A manifest with relative paths needs a folder to resolve them in: say where it comes from.
fn hint_package(error: CommandError, has_package: bool) -> CommandError {
    match error {
        CommandError::Control(ControlFailure::Reply { code: 400, message })
            if !has_package && message.contains("relative path") =>
        {
            CommandError::Control(ControlFailure::Reply {
                code: 400,
                message: format!(
                    "{message}\n(or send the app's folder with --package DIR: relative \
                     paths resolve inside it)"
                ),
            })
        }
        other => other,
    }
}

#[derive(Debug, Args)]
pub struct AppArgs {
    /// The app.
    app: String,
    #[command(flatten)]
    target: Target,
}

/// `cocaine rm APP`.
pub fn rm(args: AppArgs) -> ExitCode {
    exit(
        "rm",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::delete(&args.app), &[])
            .map(|reply| {
                let app = field(&reply, "app").as_str().unwrap_or(&args.app);
                println!("removed {app}");
            }),
    )
}

/// `cocaine reload APP`.
pub fn reload(args: AppArgs) -> ExitCode {
    exit(
        "reload",
        args.target
            .send(START_TIMEOUT_S, &request::reload(&args.app), &[])
            .map(|reply| println!("reloaded {}", started(&reply))),
    )
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the reply as JSON, for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `cocaine list`.
pub fn list(args: ListArgs) -> ExitCode {
    exit(
        "list",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::list(), &[])
            .map(|reply| {
                if args.json {
                    print_json(&reply);
                } else {
                    print!("{}", render::apps(&reply));
                }
            }),
    )
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    target: Target,
}

/// `cocaine keys`: the node's key store (users, fingerprints) and its auth counters, as JSON.
pub fn keys(args: KeysArgs) -> ExitCode {
    exit(
        "keys",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::keys(), &[])
            .map(|reply| print_json(&reply)),
    )
}

#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// Print the reply as JSON (`pem`, `fingerprint`, `bits`), for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `cocaine pubkey`: the node's public key as PEM, then its fingerprint on standard error.
pub fn pubkey(args: PubkeyArgs) -> ExitCode {
    exit(
        "pubkey",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::pubkey(), &[])
            .map(|reply| {
                if args.json {
                    print_json(&reply);
                } else {
                    print!("{}", field(&reply, "pem").as_str().unwrap_or_default());
                    eprintln!(
                        "{} bits, {}",
                        field(&reply, "bits"),
                        field(&reply, "fingerprint").as_str().unwrap_or_default()
                    );
                }
            }),
    )
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The app [default: the node itself].
    app: Option<String>,
    /// Print the reply as JSON, for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `cocaine info [APP]`.
pub fn info(args: InfoArgs) -> ExitCode {
    let app = args.app.as_deref();
    exit(
        "info",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::info(app), &[])
            .map(|reply| match (args.json, app) {
                (true, _) => print_json(&reply),
                (false, None) => print!("{}", render::node(&reply)),
                (false, Some(_)) => print!("{}", render::app(&reply)),
            }),
    )
}

/// Asks the node about `app` and returns the reply's `ok` value (for `cocaine call APP`).
pub fn app_info(target: &Target, app: &str) -> Result<Value, CommandError> {
    target.send(DEFAULT_TIMEOUT_S, &request::info(Some(app)), &[])
}

/// The node's `pubkey` reply (`pem`, `fingerprint`, `bits`), for sealing requests to it.
pub fn node_public_key(target: &Target) -> Result<Value, CommandError> {
    target.send(DEFAULT_TIMEOUT_S, &request::pubkey(), &[])
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("when").required(true).args(["at", "after"])))]
pub struct ScheduleArgs {
    /// The app.
    app: String,
    /// Its `manual-scheduler` task.
    task: String,
    /// The job's body; `-` reads it from standard input.
    #[arg(default_value = "")]
    body: String,
    /// When: an RFC 3339 time (2026-11-25T18:00:00Z, 2026-11-25T19:00:00+01:00) or unix
    /// milliseconds.
    #[arg(long, value_name = "TIME", value_parser = when::parse_time)]
    at: Option<u64>,
    /// When, from now: 500ms, 10s, 2m, 1h30m, 1d.
    #[arg(long, value_name = "DURATION", value_parser = when::parse_duration)]
    after: Option<Duration>,
    #[command(flatten)]
    target: Target,
}

/// `cocaine schedule APP TASK (--at TIME | --after DURATION) [BODY]`: prints the job's id.
pub fn schedule(args: ScheduleArgs) -> ExitCode {
    exit("schedule", run_schedule(&args))
}

fn run_schedule(args: &ScheduleArgs) -> Result<(), CommandError> {
    let when = match (args.at, args.after) {
        (Some(at), _) => When::At(at),
        (None, Some(after)) => When::After(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        // clap's group requires one of them.
        (None, None) => return Err(CommandError::Usage("give --at or --after".into())),
    };
    let body = if args.body == "-" {
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| CommandError::Usage(format!("reading standard input: {e}")))?;
        body
    } else {
        args.body.clone().into_bytes()
    };
    let json = request::schedule(&args.app, &args.task, when, &body);
    let reply = args.target.send(DEFAULT_TIMEOUT_S, &json, &[])?;
    println!("{}", text_of(field(&reply, "id")));
    Ok(())
}

#[derive(Debug, Args)]
pub struct UnscheduleArgs {
    /// The job's id, as `schedule` printed it.
    id: String,
    #[command(flatten)]
    target: Target,
}

/// `cocaine unschedule ID`.
pub fn unschedule(args: UnscheduleArgs) -> ExitCode {
    exit(
        "unschedule",
        args.target
            .send(DEFAULT_TIMEOUT_S, &request::unschedule(&args.id), &[])
            .map(|reply| {
                let id = field(&reply, "id").as_str().unwrap_or(&args.id);
                println!("unscheduled {id}");
            }),
    )
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        for bad in ["0", "-1", "NaN", "soon", "inf"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_nodes_share_our_files() {
        assert!(is_loopback("tcp://127.0.0.1:5000"));
        assert!(is_loopback("tcp://localhost:5000"));
        assert!(is_loopback("tcp://[::1]:5000"));
        assert!(is_loopback("ipc:///tmp/control"));
        assert!(!is_loopback("tcp://10.1.2.3:5000"));
        assert!(!is_loopback("tcp://no-such-iface0:5000"));
    }

    #[test]
    fn manifests_are_checked_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        let manifest = |args: &str| {
            serde_json::json!({"type": "python", "args": args,
                "tasks": {"t": {"type": "manual-scheduler"}}})
            .to_string()
        };
        let check = |args: &str, package: Option<&Path>, local| {
            validate("a", manifest(args).as_bytes(), package, local)
        };
        assert_eq!(check("local://app.py", Some(dir.path()), false), Ok(()));
        let why = check("local://nope.py", Some(dir.path()), false).unwrap_err();
        assert!(why.contains("does not exist in the package"), "{why}");
        let why = check("local://app.py", None, true).unwrap_err();
        assert!(why.contains("--package DIR"), "{why}");
        let gone = "local:///path/to/application/__init__.py";
        assert_eq!(check(gone, None, false), Ok(()), "another machine's path");
        assert_eq!(
            check(gone, None, true),
            Err(format!("app \"a\": args: {gone} does not exist"))
        );
        let why = validate("a", b"{\"type\": 1}", None, true).unwrap_err();
        assert!(why.contains("type"), "{why}");
    }

    #[test]
    fn summaries() {
        let reply = json!({"app": "echo", "version": 1, "state": "running", "redeployed": false});
        assert_eq!(started(&reply), "echo version 1 (running)");
        assert_eq!(
            started(&json!({"app": "x", "state": "running"})),
            "x (running)"
        );
    }

    #[test]
    fn app_names_come_from_the_file() {
        let name = |p: &str| app_name_of(Path::new(p)).ok();
        assert_eq!(name("manifests/echo.json").as_deref(), Some("echo"));
        assert_eq!(name("echo").as_deref(), Some("echo"));
        assert_eq!(name("/").as_deref(), None);
    }

    #[test]
    fn relative_paths_without_a_package_get_a_hint() {
        let reply = |code| {
            CommandError::Control(ControlFailure::Reply {
                code,
                message: "args: relative path \"app.py\" but ...".into(),
            })
        };
        let hinted = |e: CommandError| match e {
            CommandError::Control(ControlFailure::Reply { message, .. }) => {
                message.contains("--package DIR")
            }
            CommandError::Control(_) | CommandError::Usage(_) | CommandError::Failed(_) => false,
        };
        assert!(hinted(hint_package(reply(400), false)));
        assert!(!hinted(hint_package(reply(400), true)));
        assert!(!hinted(hint_package(reply(500), false)));
    }
}
