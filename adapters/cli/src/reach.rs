//! Fast answers about endpoints, before anything waits on ZeroMQ (which retries a connection
//! forever and would make an absent node look like a slow one): the endpoint must be well
//! formed, and something must accept connections there.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use cocaine_core::manifest::{Endpoint, Role};

/// A clap value parser for endpoints the CLI connects to: `tcp://HOST:PORT` (interface names
/// allowed, port 1 to 65535), `ipc://PATH` or `inproc://NAME`.
pub fn connect_endpoint(text: &str) -> Result<String, String> {
    let endpoint = Endpoint::parse(text)?;
    endpoint.check_role(Role::Connect)?;
    Ok(text.to_owned())
}

/// Checks that something accepts connections at `address` (already resolved: no interface
/// names) within `within`. Ok for transports that cannot be probed from outside (inproc).
pub fn probe(address: &str, within: Duration) -> Result<(), String> {
    if let Some(rest) = address.strip_prefix("tcp://") {
        return probe_tcp(rest, within);
    }
    if let Some(path) = address.strip_prefix("ipc://") {
        return UnixStream::connect(path)
            .map(drop)
            .map_err(|e| format!("nothing listens at ipc://{path} ({e})"));
    }
    Ok(())
}

fn probe_tcp(host_port: &str, within: Duration) -> Result<(), String> {
    let addresses: Vec<_> = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .collect();
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, within) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::TimedOut => format!(
            "no connection to tcp://{host_port} within {} s",
            within.as_secs_f64()
        ),
        Some(e) => format!("nothing listens at tcp://{host_port} ({e})"),
        None => format!("{host_port} resolves to no address"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

    #[test]
    fn endpoints_are_checked_at_once() {
        assert!(connect_endpoint("tcp://127.0.0.1:5000").is_ok());
        assert!(connect_endpoint("tcp://lo:5000").is_ok());
        assert!(connect_endpoint("ipc:///tmp/x").is_ok());
        for bad in [
            "tcp://127.0.0.1:99999",
            "tcp://127.0.0.1:0",
            "tcp://127.0.0.1",
            "tcp://*:5000",
            "tcp://127.0.0.1:*",
            "127.0.0.1:5000",
            "udp://127.0.0.1:5000",
            "",
        ] {
            assert!(connect_endpoint(bad).is_err(), "{bad}");
        }
        let why = connect_endpoint("tcp://127.0.0.1:99999").unwrap_err();
        assert!(why.contains("99999"), "{why}");
    }

    #[test]
    fn a_listener_is_found_and_its_absence_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = format!("tcp://127.0.0.1:{port}");
        assert_eq!(probe(&address, DEFAULT_CONNECT_TIMEOUT), Ok(()));
        drop(listener);
        let why = probe(&address, DEFAULT_CONNECT_TIMEOUT).unwrap_err();
        assert!(
            why.starts_with(&format!("nothing listens at {address}")),
            "{why}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.sock");
        let why = probe(
            &format!("ipc://{}", path.display()),
            DEFAULT_CONNECT_TIMEOUT,
        );
        assert!(why.unwrap_err().starts_with("nothing listens at ipc://"));
    }
}
