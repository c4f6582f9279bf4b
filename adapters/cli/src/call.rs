//! `cocaine call`: one request to a request-reply task (native-server or zeromq-server), its
//! reply printed as it arrives.
//!
//! The target is an endpoint (`tcp://...`, spoken to with `--protocol`), or an app name: then
//! the node's control endpoint is asked for the app (`info`) and its task is called: `--task`,
//! else its first native-server task (by name), else its first zeromq-server task.
//!
//! Output: each reply chunk, then a newline unless the chunk ends with one (`--raw`: the
//! chunks' exact bytes). Failures print like every management command's: an error the app or
//! the node answered as `error <code>: <message>`, anything else as `cocaine call: ...`.

mod cluster;
mod native;
mod seal;
mod zeromq;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use cocaine_core::control::check_app_name;

use crate::identity::Identity;
use crate::manage::{self, lookup, CommandError, ControlFailure, Target};
use crate::reach;
use cocaine_keys::UserKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// The native protocol of native-server tasks (streamed replies, policies).
    Native,
    /// zeromq-server tasks: the body as frames, one reply `["ok", chunks...]` or
    /// `["error", {"code", "message"}]`.
    ZeromqServer,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// A task's endpoint, e.g. tcp://127.0.0.1:9110 (interface names allowed), or an app
    /// name: its task, found by asking --node.
    #[arg(value_name = "ENDPOINT|APP")]
    target: String,
    /// The request body (`-` streams standard input). Two words are the older form EVENT
    /// BODY.
    #[arg(value_name = "BODY", num_args = 0..=2)]
    words: Vec<String>,
    /// The event [default: the task's own name]. Native protocol only.
    #[arg(long, short)]
    event: Option<String>,
    /// The app's task to call [default: its first native-server, else its first
    /// zeromq-server].
    #[arg(long)]
    task: Option<String>,
    /// How to speak to an ENDPOINT [default: native; for an app, its task's type].
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Print the reply's bytes exactly, without newlines between chunks and at the end.
    #[arg(long)]
    raw: bool,
    /// Give up after this many seconds without an answer.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Give up after this many seconds if the endpoint (or --node) does not accept the
    /// connection.
    #[arg(long, value_name = "SECS", value_parser = manage::parse_timeout, default_value = "3")]
    connect_timeout: Duration,
    /// The request's `timeout` policy, in milliseconds (from dispatch to end). Native only.
    #[arg(long)]
    job_timeout: Option<u64>,
    /// The request's `deadline` policy, in milliseconds (from arrival to end). Native only.
    #[arg(long)]
    deadline: Option<u64>,
    /// Put the request at the front of the queue. Native only.
    #[arg(long)]
    urgent: bool,
    /// Call the app on whichever node of --node's cluster suits best: resolve it there,
    /// choose by load (power of two choices), retry a 503 at another node. Native-server
    /// tasks only; says on standard error which node answered.
    #[arg(long)]
    cluster: bool,
    /// The node's control endpoint, to find an app given by name.
    #[arg(
        long,
        env = "COCAINE_NODE",
        default_value = manage::DEFAULT_NODE,
        value_name = "ENDPOINT",
        value_parser = reach::connect_endpoint
    )]
    node: String,
    /// The app a signed request is meant for, when ENDPOINT is an endpoint [default: the app
    /// name given as the target].
    #[arg(long, value_name = "APP")]
    app: Option<String>,
    /// With --user and --key, make the call in a session (a signed session-open, then the
    /// call with an HMAC under the session key) rather than signing it (docs/security.md).
    #[arg(long)]
    session: bool,
    /// Seal the body for the node's public key and open the sealed reply with --key
    /// (docs/security.md); needs --user and --key. Native protocol only. Not with
    /// --session: a sealed request is signed per request.
    #[arg(long, conflicts_with = "session")]
    seal: bool,
    /// The node's public key to seal for (its `node.pem`, or `cocaine pubkey`'s output)
    /// [default: asked of --node's control endpoint].
    #[arg(long, value_name = "FILE", requires = "seal")]
    node_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    identity: Identity,
}

/// What one call sends.
pub struct Request {
    pub event: String,
    pub body: Body,
    pub policy: cocaine_client::Policy,
    pub patience: Duration,
    /// Who signs it, for which app.
    pub signer: Option<(String, UserKey)>,
    /// With a signer: in a session rather than signed.
    pub session: bool,
    /// The node's public key (PEM) when the body is sealed for it.
    pub seal: Option<Vec<u8>>,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// Standard input, read in chunks as it comes.
    Stdin,
}

/// Why a call failed: an answer, or anything else.
pub enum CallError {
    Answer { code: u64, message: String },
    Other(String),
}

impl From<String> for CallError {
    fn from(message: String) -> Self {
        CallError::Other(message)
    }
}

pub fn run(args: CallArgs) -> ExitCode {
    manage::exit("call", call(&args))
}

fn call(args: &CallArgs) -> Result<(), CommandError> {
    let (event, body) = event_and_body(args).map_err(CommandError::Usage)?;
    if args.cluster {
        return call_cluster(args, event, body);
    }
    let (endpoint, protocol) = if args.target.contains("://") {
        reach::connect_endpoint(&args.target).map_err(CommandError::Usage)?;
        (
            args.target.clone(),
            args.protocol.unwrap_or(Protocol::Native),
        )
    } else {
        find(args)?
    };
    if protocol == Protocol::ZeromqServer && !event.is_empty() {
        return Err(CommandError::Usage(
            "a zeromq-server task has no events: drop --event (or call a native-server)".into(),
        ));
    }
    let signer = signer(args, protocol)?;
    if args.session && signer.is_none() {
        return Err(CommandError::Usage(
            "--session needs --user and --key".into(),
        ));
    }
    let seal = match (args.seal, &signer) {
        (false, _) => None,
        (true, None) => {
            return Err(CommandError::Usage(
                "--seal needs --user and --key: the reply is sealed for the signing user".into(),
            ))
        }
        (true, Some(_)) => Some(seal::node_key(
            args.node_key.as_deref(),
            &args.node,
            args.connect_timeout,
            &args.identity,
        )?),
    };
    let address =
        cocaine_os::endpoint::resolve(&endpoint).map_err(|e| CommandError::Usage(e.to_string()))?;
    reach::probe(&address, args.connect_timeout)
        .map_err(|why| CommandError::Failed(format!("{endpoint}: {why}")))?;
    let request = Request {
        event,
        body,
        policy: cocaine_client::Policy {
            urgent: args.urgent,
            timeout_ms: args.job_timeout,
            deadline_ms: args.deadline,
            hop: 0,
            sealed: false,
        },
        patience: Duration::from_secs_f64(args.timeout.max(0.001)),
        signer,
        session: args.session,
        seal,
    };
    let mut out = Output::new(args.raw);
    let result = match protocol {
        Protocol::Native => native::call(&address, &request, &mut |c| out.chunk(c)),
        Protocol::ZeromqServer => zeromq::call(&address, &request, &mut |c| out.chunk(c)),
    };
    out.finish().map_err(CommandError::Failed)?;
    result.map_err(|e| match e {
        CallError::Answer { code, message } => {
            CommandError::Control(ControlFailure::Reply { code, message })
        }
        CallError::Other(message) => CommandError::Failed(format!("{endpoint}: {message}")),
    })
}

/// `--cluster`: the app resolved through --node, called where the load is lowest.
fn call_cluster(args: &CallArgs, event: String, body: Body) -> Result<(), CommandError> {
    if args.target.contains("://") {
        return Err(CommandError::Usage(
            "--cluster calls an app by name, not an endpoint".into(),
        ));
    }
    let task = match &args.task {
        Some(task) => task.clone(),
        None => {
            let (_, protocol, task) = find_task(args)?;
            if protocol != Protocol::Native {
                return Err(CommandError::Usage(
                    "--cluster calls native-server tasks only".into(),
                ));
            }
            task
        }
    };
    if args.identity.load().map_err(CommandError::Usage)?.is_some() {
        return Err(CommandError::Usage(
            "--cluster calls cannot be signed yet: drop --user/--key, or call one node".into(),
        ));
    }
    let request = Request {
        event,
        body,
        policy: cocaine_client::Policy::default(),
        patience: Duration::from_secs_f64(args.timeout.max(0.001)),
        signer: None,
        session: false,
        seal: None,
    };
    let node = cocaine_os::endpoint::resolve(&args.node).unwrap_or_else(|_| args.node.clone());
    let mut out = Output::new(args.raw);
    let result = cluster::call(&node, &args.target, &task, &request, &mut |c| out.chunk(c));
    out.finish().map_err(CommandError::Failed)?;
    result.map_err(|e| match e {
        CallError::Answer { code, message } => {
            CommandError::Control(ControlFailure::Reply { code, message })
        }
        CallError::Other(message) => CommandError::Failed(message),
    })
}

/// The signing user's key and the app it signs for, with --user and --key.
fn signer(args: &CallArgs, protocol: Protocol) -> Result<Option<(String, UserKey)>, CommandError> {
    let Some(key) = args.identity.load().map_err(CommandError::Usage)? else {
        return Ok(None);
    };
    if protocol == Protocol::ZeromqServer {
        return Err(CommandError::Usage(
            "zeromq-server requests cannot be signed; sign native-server calls".into(),
        ));
    }
    let app = match &args.app {
        Some(app) => app.clone(),
        None if !args.target.contains("://") => args.target.clone(),
        None => {
            return Err(CommandError::Usage(
                "a signed call to an endpoint needs --app NAME (the app it is signed for)".into(),
            ))
        }
    };
    Ok(Some((app, key)))
}

/// The event and the body from the words after the target: `[BODY]`, or the older
/// `EVENT BODY`.
fn event_and_body(args: &CallArgs) -> Result<(String, Body), String> {
    let (event, body) = match (&args.event, args.words.as_slice()) {
        (Some(event), [] | [_]) => (event.clone(), args.words.first()),
        (Some(_), _) => return Err("with --event, give at most one BODY".into()),
        (None, [event, body]) => (event.clone(), Some(body)),
        (None, words) => (String::new(), words.first()),
    };
    let body = match body.map(String::as_str) {
        Some("-") => Body::Stdin,
        Some(text) => Body::Bytes(text.as_bytes().to_vec()),
        None => Body::Bytes(Vec::new()),
    };
    Ok((event, body))
}

/// The endpoint and protocol of the app named by `args.target`.
fn find(args: &CallArgs) -> Result<(String, Protocol), CommandError> {
    let (endpoint, protocol, _) = find_task(args)?;
    Ok((endpoint, protocol))
}

/// The endpoint, protocol and task name of the app named by `args.target`.
fn find_task(args: &CallArgs) -> Result<(String, Protocol, String), CommandError> {
    check_app_name(&args.target).map_err(|e| {
        CommandError::Usage(format!(
            "{:?} is neither an endpoint (tcp://HOST:PORT) nor an app name: {e}",
            args.target
        ))
    })?;
    let target = Target {
        node: args.node.clone(),
        timeout: Some(Duration::from_secs_f64(args.timeout.max(0.001))),
        connect_timeout: args.connect_timeout,
        identity: args.identity.clone(),
    };
    let info = manage::app_info(&target, &args.target)?;
    let task = lookup::request_reply(&info, args.task.as_deref())
        .map_err(|why| CommandError::Failed(format!("app {:?} {why}", args.target)))?;
    let protocol = match task.kind {
        lookup::Kind::Native => Protocol::Native,
        lookup::Kind::ZeromqServer => Protocol::ZeromqServer,
    };
    // A wildcard bind is reached through the node's own host.
    let node = cocaine_os::endpoint::resolve(&args.node).unwrap_or_else(|_| args.node.clone());
    Ok((
        lookup::connect_address(&task.endpoint, &node),
        protocol,
        task.task,
    ))
}

/// Reads standard input in pieces, giving each to `send`.
pub fn stream_stdin(send: &mut dyn FnMut(&[u8]) -> Result<(), String>) -> Result<(), String> {
    let mut stdin = std::io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stdin
            .read(&mut buf)
            .map_err(|e| format!("reading standard input: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        send(&buf[..n])?;
    }
}

/// Standard output: chunks as they come, each ending a line unless `raw`.
struct Output {
    raw: bool,
    /// Whether what was written so far ends a line (nothing written counts as ended).
    at_line_start: bool,
    out: std::io::Stdout,
}

impl Output {
    fn new(raw: bool) -> Self {
        Self {
            raw,
            at_line_start: true,
            out: std::io::stdout(),
        }
    }

    fn chunk(&mut self, data: &[u8]) -> Result<(), String> {
        let mut out = self.out.lock();
        out.write_all(data).map_err(|e| e.to_string())?;
        if !data.is_empty() {
            self.at_line_start = data.ends_with(b"\n");
        }
        if !self.raw && !self.at_line_start {
            out.write_all(b"\n").map_err(|e| e.to_string())?;
            self.at_line_start = true;
        }
        out.flush().map_err(|e| e.to_string())
    }

    fn finish(&mut self) -> Result<(), String> {
        self.out.lock().flush().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CallArgs,
    }

    fn parsed(words: &[&str]) -> (String, Option<Vec<u8>>) {
        let cli = Cli::try_parse_from(std::iter::once("call").chain(words.iter().copied()))
            .unwrap_or_else(|e| panic!("{words:?}: {e}"));
        let (event, body) = event_and_body(&cli.args).unwrap();
        let body = match body {
            Body::Bytes(b) => Some(b),
            Body::Stdin => None,
        };
        (event, body)
    }

    #[test]
    fn the_event_is_optional_and_the_old_form_still_works() {
        let s = |e: &str, b: &str| (e.to_owned(), Some(b.as_bytes().to_vec()));
        assert_eq!(parsed(&["echo"]), s("", ""));
        assert_eq!(parsed(&["echo", "hello"]), s("", "hello"));
        assert_eq!(parsed(&["echo", "--event", "count", "5"]), s("count", "5"));
        assert_eq!(parsed(&["echo", "-e", "count"]), s("count", ""));
        assert_eq!(parsed(&["echo", "count", "5"]), s("count", "5"));
        assert_eq!(parsed(&["echo", "", "hello"]), s("", "hello"));
        assert_eq!(parsed(&["echo", "-"]), (String::new(), None));
        let cli = Cli::try_parse_from(["call", "echo", "--event", "x", "a", "b"]).unwrap();
        assert!(event_and_body(&cli.args).is_err());
        assert!(Cli::try_parse_from(["call", "echo", "a", "b", "c"]).is_err());
    }

    #[test]
    fn chunks_end_lines_unless_raw() {
        let mut o = Output::new(false);
        o.at_line_start = true;
        // Only the line bookkeeping is checked here; the bytes go to the test's stdout.
        o.chunk(b"1").unwrap();
        assert!(o.at_line_start);
        let mut raw = Output::new(true);
        raw.chunk(b"1").unwrap();
        assert!(!raw.at_line_start);
        raw.chunk(b"2\n").unwrap();
        assert!(raw.at_line_start);
    }
}
