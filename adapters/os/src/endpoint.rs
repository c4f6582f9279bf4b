//! ZeroMQ endpoint addresses: turning an interface name into its address before binding.
//!
//! The 2012 manifests bind `tcp://lo:9200`. The vendored libzmq cannot resolve interface
//! names ("No such device"), so `tcp://IFACE:PORT` becomes `tcp://ADDRESS:PORT` here, using
//! the interface's first IPv4 address (or its first address of any family).

use std::net::IpAddr;

/// Why an endpoint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{endpoint}: {host:?} is neither an address nor a network interface of this host")]
    UnknownHost { endpoint: String, host: String },
    #[error("{endpoint}: cannot list network interfaces: {reason}")]
    Interfaces { endpoint: String, reason: String },
}

/// The address to hand to libzmq for `endpoint`. Only `tcp://` hosts that are not
/// addresses, `*` or `localhost` are looked up, as interface names.
pub fn resolve(endpoint: &str) -> Result<String, EndpointError> {
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return Ok(endpoint.to_owned());
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Ok(endpoint.to_owned());
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if host == "*" || bare.parse::<IpAddr>().is_ok() {
        return Ok(endpoint.to_owned());
    }
    if host == "localhost" {
        return Ok(format!("tcp://127.0.0.1:{port}"));
    }
    let interfaces = if_addrs::get_if_addrs().map_err(|e| EndpointError::Interfaces {
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    })?;
    let mut addresses: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| i.name == host)
        .map(|i| i.ip())
        .collect();
    // IPv4 first: a ZeroMQ socket without IPV6 set cannot bind an IPv6 address.
    addresses.sort_by_key(|a| !a.is_ipv4());
    match addresses.first() {
        Some(IpAddr::V4(a)) => Ok(format!("tcp://{a}:{port}")),
        Some(IpAddr::V6(a)) => Ok(format!("tcp://[{a}]:{port}")),
        None => Err(EndpointError::UnknownHost {
            endpoint: endpoint.to_owned(),
            host: host.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_become_addresses() {
        assert_eq!(resolve("tcp://lo:9200").unwrap(), "tcp://127.0.0.1:9200");
        assert_eq!(resolve("tcp://localhost:*").unwrap(), "tcp://127.0.0.1:*");
    }

    #[test]
    fn addresses_and_other_transports_pass_through() {
        for e in [
            "tcp://127.0.0.1:5000",
            "tcp://*:5000",
            "tcp://[::1]:5000",
            "ipc:///tmp/x",
            "inproc://a",
        ] {
            assert_eq!(resolve(e).unwrap(), e);
        }
    }

    #[test]
    fn unknown_interfaces_are_named() {
        let err = resolve("tcp://no-such-iface0:1").unwrap_err();
        assert!(err.to_string().contains("no-such-iface0"), "{err}");
    }
}
