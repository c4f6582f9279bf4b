//! What the node tells a worker at spawn: the socket path on the command line and in the
//! environment, plus the worker's id, app and timing (docs/protocol.md §1).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Heartbeat interval when `COCAINE_HEARTBEAT_MS` is not set.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(5_000);
/// Node silence after which the worker exits, when `COCAINE_TIMEOUT_MS` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Largest frame accepted from the node: the protocol's default `max-message`.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Why the spawn configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Neither `--socket PATH` nor `COCAINE_SOCKET` was given.
    #[error("no socket path: pass --socket PATH or set COCAINE_SOCKET")]
    MissingSocket,
    /// `--socket` was the last argument.
    #[error("--socket needs a path")]
    SocketArgWithoutValue,
    /// A required variable is not set.
    #[error("environment variable {0} is not set")]
    MissingVar(&'static str),
    /// A variable is set but not valid (not UTF-8, not a positive number of milliseconds).
    #[error("environment variable {var} has invalid value {value:?}: {reason}")]
    InvalidVar {
        /// The variable.
        var: &'static str,
        /// Its value, lossily decoded.
        value: String,
        /// What it should have been.
        reason: &'static str,
    },
}

/// Everything a worker needs to reach its node and keep the channel alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The node's Unix socket.
    pub socket: PathBuf,
    /// Sent in the handshake so the node knows which spawned process this is.
    pub worker_id: String,
    /// The app this worker serves (informational; empty if the node did not say).
    pub app: String,
    /// How often to send `[2]`.
    pub heartbeat: Duration,
    /// How long the node may stay silent before the worker assumes it is gone.
    pub timeout: Duration,
    /// The node's max-message (`COCAINE_MAX_MESSAGE`): a longer frame from the node means
    /// framing is lost, and a reply chunk that would make a longer one fails its job with 413.
    pub max_message: usize,
}

impl Config {
    /// Reads the process's arguments and environment.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the missing or malformed setting.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_parts(std::env::args_os().skip(1), |var| std::env::var_os(var))
    }

    /// Reads `args` (without the program name) and variables from `var`; `--socket PATH`
    /// wins over `COCAINE_SOCKET`. Separate from [`from_env`](Self::from_env) so it can be
    /// tested without touching the process environment.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_parts(
        args: impl IntoIterator<Item = OsString>,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let socket = match socket_arg(args)? {
            Some(path) => path,
            None => var("COCAINE_SOCKET")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or(ConfigError::MissingSocket)?,
        };
        let worker_id = string_var(&var, "COCAINE_WORKER_ID")?
            .ok_or(ConfigError::MissingVar("COCAINE_WORKER_ID"))?;
        let app = string_var(&var, "COCAINE_APP")?.unwrap_or_default();
        let heartbeat = millis_var(&var, "COCAINE_HEARTBEAT_MS")?.unwrap_or(DEFAULT_HEARTBEAT);
        let timeout = millis_var(&var, "COCAINE_TIMEOUT_MS")?.unwrap_or(DEFAULT_TIMEOUT);
        let max_message = bytes_var(&var, "COCAINE_MAX_MESSAGE")?.unwrap_or(DEFAULT_MAX_MESSAGE);
        Ok(Config {
            socket,
            worker_id,
            app,
            heartbeat,
            timeout,
            max_message,
        })
    }
}

/// The value after `--socket` (or of `--socket=PATH`), if the flag is present.
fn socket_arg(args: impl IntoIterator<Item = OsString>) -> Result<Option<PathBuf>, ConfigError> {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--socket" {
            return args
                .next()
                .map(|p| Some(PathBuf::from(p)))
                .ok_or(ConfigError::SocketArgWithoutValue);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--socket=")) {
            return Ok(Some(PathBuf::from(path)));
        }
    }
    Ok(None)
}

fn string_var(
    var: &impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<String>, ConfigError> {
    var(name)
        .map(|v| {
            v.into_string().map_err(|v| ConfigError::InvalidVar {
                var: name,
                value: v.to_string_lossy().into_owned(),
                reason: "not UTF-8",
            })
        })
        .transpose()
}

fn millis_var(
    var: &impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = string_var(var, name)? else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(ConfigError::InvalidVar {
            var: name,
            value,
            reason: "expected a positive number of milliseconds",
        }),
    }
}

fn bytes_var(
    var: &impl Fn(&str) -> Option<OsString>,
    name: &'static str,
) -> Result<Option<usize>, ConfigError> {
    let Some(value) = string_var(var, name)? else {
        return Ok(None);
    };
    match value.trim().parse::<usize>() {
        Ok(bytes) if bytes > 0 => Ok(Some(bytes)),
        _ => Err(ConfigError::InvalidVar {
            var: name,
            value,
            reason: "expected a positive number of bytes",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        Config::from_parts(args.iter().map(OsString::from), |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn socket_argument_wins_over_the_environment() {
        let c = parse(
            &["--socket", "/a.sock"],
            &[("COCAINE_SOCKET", "/b.sock"), ("COCAINE_WORKER_ID", "w1")],
        )
        .unwrap();
        assert_eq!(c.socket, PathBuf::from("/a.sock"));
        assert_eq!(c.worker_id, "w1");
        assert_eq!(c.heartbeat, DEFAULT_HEARTBEAT);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn environment_alone_is_enough() {
        let c = parse(
            &[],
            &[
                ("COCAINE_SOCKET", "/b.sock"),
                ("COCAINE_WORKER_ID", "w1"),
                ("COCAINE_APP", "app"),
                ("COCAINE_HEARTBEAT_MS", "250"),
                ("COCAINE_TIMEOUT_MS", "1000"),
            ],
        )
        .unwrap();
        assert_eq!(c.socket, PathBuf::from("/b.sock"));
        assert_eq!(c.app, "app");
        assert_eq!(c.heartbeat, Duration::from_millis(250));
        assert_eq!(c.timeout, Duration::from_millis(1000));
        assert_eq!(c.max_message, DEFAULT_MAX_MESSAGE);
    }

    #[test]
    fn max_message_comes_from_the_node() {
        let base = [("COCAINE_SOCKET", "/b.sock"), ("COCAINE_WORKER_ID", "w1")];
        let with = |value| {
            let mut vars = base.to_vec();
            vars.push(("COCAINE_MAX_MESSAGE", value));
            parse(&[], &vars)
        };
        assert_eq!(with("65536").unwrap().max_message, 65536);
        for bad in ["0", "-1", "lots"] {
            assert!(
                matches!(
                    with(bad),
                    Err(ConfigError::InvalidVar {
                        var: "COCAINE_MAX_MESSAGE",
                        ..
                    })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn missing_and_malformed_settings_are_named() {
        assert_eq!(
            parse(&[], &[("COCAINE_WORKER_ID", "w")]),
            Err(ConfigError::MissingSocket)
        );
        assert_eq!(
            parse(&["--socket"], &[("COCAINE_WORKER_ID", "w")]),
            Err(ConfigError::SocketArgWithoutValue)
        );
        assert_eq!(
            parse(&["--socket=/s"], &[]),
            Err(ConfigError::MissingVar("COCAINE_WORKER_ID"))
        );
        assert!(matches!(
            parse(
                &["--socket=/s"],
                &[("COCAINE_WORKER_ID", "w"), ("COCAINE_TIMEOUT_MS", "0")]
            ),
            Err(ConfigError::InvalidVar {
                var: "COCAINE_TIMEOUT_MS",
                ..
            })
        ));
    }
}
