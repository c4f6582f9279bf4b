//! ZeroMQ endpoint syntax (`tcp://HOST:PORT`, `ipc://PATH`, `inproc://NAME`), checked without
//! touching the network: nothing is resolved, only the shape is validated. The adapters that
//! open sockets can reuse [`Endpoint::parse`] instead of splitting strings again.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest `ipc://` path a Unix socket address holds (`sun_path` is 108 bytes on Linux,
/// one of them the terminating NUL). A longer one would only fail later, at bind time.
pub const MAX_IPC_PATH: usize = 107;

/// A validated endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `tcp://HOST:PORT`.
    Tcp {
        /// Where to bind or connect.
        host: Host,
        /// `None` for `*`: any free port, chosen when binding.
        port: Option<u16>,
    },
    /// `ipc://PATH`: a Unix domain socket (`@name` is Linux's abstract namespace).
    Ipc(String),
    /// `inproc://NAME`: inside one ZeroMQ context.
    Inproc(String),
}

/// The host part of a `tcp://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `*`: every interface (bind only).
    Any,
    /// An IP address; IPv6 is written in brackets (`tcp://[::1]:9100`).
    Ip(IpAddr),
    /// An interface name (`lo`, `eth0`) or a host name, resolved by whoever opens the socket.
    Name(String),
}

/// Whether a task binds its endpoint or connects to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Listens: servers, sinks, pubsub. `*` is fine for host and port.
    Bind,
    /// Connects to someone else's socket: subscribers. Needs a concrete host and port.
    Connect,
}

impl Endpoint {
    /// Parses and validates `s`; the error says what is wrong, for a manifest message.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!(
                "{s:?} is not an endpoint; expected tcp://HOST:PORT, ipc://PATH or inproc://NAME"
            ));
        };
        match scheme {
            "tcp" => parse_tcp(rest),
            "ipc" => {
                if rest.is_empty() {
                    Err("an ipc:// endpoint needs a path".into())
                } else if rest.contains('\0') {
                    Err("an ipc:// path cannot hold a NUL byte".into())
                } else if rest.len() > MAX_IPC_PATH {
                    Err(format!(
                        "an ipc:// path is at most {MAX_IPC_PATH} bytes, this one is {}",
                        rest.len()
                    ))
                } else {
                    Ok(Endpoint::Ipc(rest.to_owned()))
                }
            }
            "inproc" => {
                if rest.is_empty() {
                    Err("an inproc:// endpoint needs a name".into())
                } else {
                    Ok(Endpoint::Inproc(rest.to_owned()))
                }
            }
            other => Err(format!(
                "unsupported transport {other:?}; expected tcp://, ipc:// or inproc://"
            )),
        }
    }

    /// Checks that the endpoint can be used that way: a connect needs a concrete host and port.
    pub fn check_role(&self, role: Role) -> Result<(), String> {
        match (self, role) {
            (
                Endpoint::Tcp {
                    host: Host::Any, ..
                },
                Role::Connect,
            ) => Err("cannot connect to host *; name the host to connect to".into()),
            (Endpoint::Tcp { port: None, .. }, Role::Connect) => {
                Err("cannot connect to port *; name the port to connect to".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether binding both `self` and `other` on one node must fail: the same ipc path or
    /// inproc name, or the same TCP port on the same host (or on `*`, which takes every
    /// interface). Names are not resolved (that would be IO), so `lo` and `127.0.0.1` are
    /// not seen as the same; `*` ports never clash, each gets its own.
    pub fn clashes_with(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Ipc(a), Endpoint::Ipc(b)) => a == b,
            (Endpoint::Inproc(a), Endpoint::Inproc(b)) => a == b,
            (
                Endpoint::Tcp {
                    host: h1,
                    port: Some(p1),
                },
                Endpoint::Tcp {
                    host: h2,
                    port: Some(p2),
                },
            ) => p1 == p2 && (h1 == h2 || h1.is_any() || h2.is_any()),
            _ => false,
        }
    }
}

impl Host {
    /// `*`, or an unspecified address (`0.0.0.0`, `[::]`), which also binds every interface.
    pub(crate) fn is_any(&self) -> bool {
        match self {
            Host::Any => true,
            Host::Ip(ip) => ip.is_unspecified(),
            Host::Name(_) => false,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Any => f.write_str("*"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp {
                host,
                port: Some(port),
            } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Tcp { host, port: None } => write!(f, "tcp://{host}:*"),
            Endpoint::Ipc(path) => write!(f, "ipc://{path}"),
            Endpoint::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

fn parse_tcp(rest: &str) -> Result<Endpoint, String> {
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!(
            "tcp://{rest} has no port; expected tcp://HOST:PORT"
        ));
    };
    let port = parse_port(port)?;
    let host = parse_host(host)?;
    Ok(Endpoint::Tcp { host, port })
}

fn parse_port(port: &str) -> Result<Option<u16>, String> {
    if port == "*" {
        return Ok(None);
    }
    match port.parse::<u16>() {
        // `parse` accepts a leading `+`, which ZeroMQ would not.
        Ok(n) if n > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
        _ => Err(format!(
            "port {port:?} must be a number from 1 to 65535, or *"
        )),
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host == "*" {
        return Ok(Host::Any);
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(IpAddr::V6(ip)))
            .map_err(|_| format!("{host:?} is not an IPv6 address"));
    }
    if host.is_empty() {
        return Err("the host is empty; use * for every interface".into());
    }
    if host.contains(':') {
        return Err(format!(
            "host {host:?}: write an IPv6 address in brackets, like [::1]"
        ));
    }
    // All digits and dots is meant as an IPv4 address, so a typo there is not a host name.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .map_err(|_| format!("{host:?} is not an IPv4 address"));
    }
    let name_ok = host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !name_ok {
        return Err(format!(
            "host {host:?} is not an IP address, *, an interface or a host name"
        ));
    }
    Ok(Host::Name(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts() {
        for s in [
            "tcp://*:9100",
            "tcp://lo:9100",
            "tcp://127.0.0.1:1",
            "tcp://[::1]:65535",
            "tcp://eth0.100:*",
            "tcp://my-host.example.org:80",
            "ipc:///tmp/x.sock",
            "ipc://@abstract",
            "inproc://events",
        ] {
            let e = Endpoint::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(e.to_string(), s);
        }
    }

    #[test]
    fn refuses() {
        for s in [
            "",
            "tcp:/x:1",
            "udp://1.2.3.4:5",
            "tcp://1.2.3.4",
            "tcp://1.2.3.4:0",
            "tcp://1.2.3.4:65536",
            "tcp://1.2.3.4:+80",
            "tcp://1.2.3.400:80",
            "tcp://::1:80",
            "tcp://[zz]:80",
            "tcp://:80",
            "tcp://a b:80",
            "ipc://",
            "inproc://",
        ] {
            assert!(Endpoint::parse(s).is_err(), "{s} should be refused");
        }
        let long = format!("ipc:///{}", "a".repeat(MAX_IPC_PATH));
        assert!(Endpoint::parse(&long).is_err());
    }

    #[test]
    fn roles_and_clashes() {
        let e = |s| Endpoint::parse(s).unwrap();
        assert!(e("tcp://*:1").check_role(Role::Connect).is_err());
        assert!(e("tcp://h:*").check_role(Role::Connect).is_err());
        assert!(e("tcp://h:1").check_role(Role::Connect).is_ok());
        assert!(e("tcp://*:1").clashes_with(&e("tcp://lo:1")));
        assert!(e("tcp://lo:1").clashes_with(&e("tcp://0.0.0.0:1")));
        assert!(!e("tcp://lo:1").clashes_with(&e("tcp://127.0.0.1:1")));
        assert!(!e("tcp://*:*").clashes_with(&e("tcp://*:*")));
        assert!(e("ipc:///a").clashes_with(&e("ipc:///a")));
        assert!(!e("ipc:///a").clashes_with(&e("inproc:///a")));
    }
}
