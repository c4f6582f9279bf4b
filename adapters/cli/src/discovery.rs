//! `cocaine node`'s cluster flags (docs/cluster.md): `--host`, `--discovery`, `--peer`,
//! `--announce-interval`, `--node-id`, turned into the core's `DiscoveryConfig`. The node's
//! id and first `seq` come from here, since the core reads no clock and no random source.

use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use cocaine_core::cluster::check_node_id;
use cocaine_core::node::{DiscoveryConfig, DEFAULT_ANNOUNCE_INTERVAL, DEFAULT_MULTICAST_GROUP};

/// The file in the store that keeps the node's id across restarts.
const NODE_ID_FILE: &str = "node-id";

#[derive(Debug, Args)]
pub struct DiscoveryArgs {
    /// Bind every endpoint whose host is `*` (and the default control endpoint) on this
    /// address, so that several nodes can share one machine (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,
    /// Find peers by multicast on the local network: `multicast` (group 239.192.74.66:5001)
    /// or `multicast=GROUP:PORT`. Off by default.
    #[arg(long, value_name = "MODE", value_parser = parse_discovery)]
    pub discovery: Option<SocketAddrV4>,
    /// A peer's control endpoint, tcp://HOST:PORT; repeat for several. Announcements go to
    /// each, unicast, at that host and port over UDP.
    #[arg(long = "peer", value_name = "ENDPOINT")]
    pub peers: Vec<String>,
    /// How often the node announces itself, in milliseconds; a peer silent for three
    /// intervals is forgotten.
    #[arg(long, value_name = "MS", value_parser = parse_interval)]
    pub announce_interval: Option<Duration>,
    /// The node's id in the cluster [default: kept in the store's `node-id` file, made at
    /// random the first time; random for each run without a store].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    #[command(flatten)]
    pub etcd: crate::etcd::EtcdArgs,
}

impl DiscoveryArgs {
    /// Whether the node takes part in a cluster.
    pub fn enabled(&self) -> bool {
        self.discovery.is_some() || !self.peers.is_empty() || self.etcd.enabled()
    }

    /// The core's discovery settings, or none when discovery is off. `control` is the node's
    /// control endpoints (discovery needs one); `store` is where the id is kept.
    pub fn config(
        &self,
        control: &[String],
        store: Option<&Path>,
    ) -> Result<Option<DiscoveryConfig>, String> {
        if !self.enabled() {
            return Ok(None);
        }
        if control.is_empty() {
            return Err(
                "--discovery, --peer and --etcd need a control endpoint (peers are told where it is): \
                 give --control ENDPOINT"
                    .to_owned(),
            );
        }
        let peers = self
            .peers
            .iter()
            .map(|p| peer_address(p))
            .collect::<Result<Vec<_>, _>>()?;
        let node_id = match &self.node_id {
            Some(id) => {
                check_node_id(id).map_err(|e| format!("--node-id {id:?}: {e}"))?;
                id.clone()
            }
            None => node_id(store)?,
        };
        let seq_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(Some(DiscoveryConfig {
            interval: self.announce_interval.unwrap_or(DEFAULT_ANNOUNCE_INTERVAL),
            multicast: self.discovery,
            peers,
            registry: self.etcd.enabled(),
            ..DiscoveryConfig::new(node_id, seq_start)
        }))
    }
}

/// Control addresses on `--host`: a `*` host, and the default address when none was given
/// (`defaulted`), are bound there instead.
pub fn on_host(control: Vec<String>, host: Option<&str>, defaulted: bool) -> Vec<String> {
    let Some(host) = host else {
        return control;
    };
    control
        .into_iter()
        .map(|c| {
            let port = match c.strip_prefix("tcp://*:") {
                Some(port) => port,
                None if defaulted => c.rsplit_once(':').map_or("", |(_, port)| port),
                None => return c,
            };
            format!("tcp://{host}:{port}")
        })
        .collect()
}

fn parse_discovery(text: &str) -> Result<SocketAddrV4, String> {
    let group = match text.split_once('=') {
        None if text == "multicast" => return Ok(DEFAULT_MULTICAST_GROUP),
        Some(("multicast", group)) => group,
        _ => return Err(format!("{text:?}: use multicast or multicast=GROUP:PORT")),
    };
    let group: SocketAddrV4 = group
        .parse()
        .map_err(|_| format!("{group:?}: not an IPv4 GROUP:PORT such as 239.192.74.66:5001"))?;
    if !group.ip().is_multicast() {
        return Err(format!(
            "{group}: not a multicast group (224.0.0.0 to 239.255.255.255)"
        ));
    }
    Ok(group)
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(ms) if ms >= 10 => Ok(Duration::from_millis(ms)),
        _ => Err(format!("{text:?}: milliseconds, at least 10")),
    }
}

/// The UDP address of a peer's control endpoint `tcp://HOST:PORT` (a name is looked up once,
/// at start).
fn peer_address(endpoint: &str) -> Result<SocketAddr, String> {
    let bad = || format!("--peer {endpoint}: not tcp://HOST:PORT");
    let rest = endpoint.strip_prefix("tcp://").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "*" || host.is_empty() {
        return Err(bad());
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("--peer {endpoint}: {e}"))?
        .next()
        .ok_or_else(|| format!("--peer {endpoint}: no address for {host}"))
}

/// The id kept in the store, made and kept the first time; random for each run without one.
fn node_id(store: Option<&Path>) -> Result<String, String> {
    let Some(store) = store else {
        return random_id();
    };
    let file = store.join(NODE_ID_FILE);
    if let Ok(text) = std::fs::read_to_string(&file) {
        let id = text.trim();
        return match check_node_id(id) {
            Ok(()) => Ok(id.to_owned()),
            Err(e) => Err(format!("{}: {e}", file.display())),
        };
    }
    let id = random_id()?;
    std::fs::write(&file, format!("{id}\n"))
        .map_err(|e| format!("cannot keep the node's id in {}: {e}", file.display()))?;
    Ok(id)
}

fn random_id() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot make a node id from /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_modes_parse() {
        assert_eq!(parse_discovery("multicast"), Ok(DEFAULT_MULTICAST_GROUP));
        assert_eq!(
            parse_discovery("multicast=239.1.2.3:6000"),
            Ok("239.1.2.3:6000".parse().unwrap())
        );
        assert!(parse_discovery("multicast=10.0.0.1:5")
            .unwrap_err()
            .contains("not a multicast"));
        assert!(parse_discovery("etcd").is_err());
        assert!(parse_discovery("multicast=x").is_err());
    }

    #[test]
    fn peers_are_control_endpoints() {
        assert_eq!(
            peer_address("tcp://127.0.0.2:5000"),
            Ok("127.0.0.2:5000".parse().unwrap())
        );
        assert_eq!(
            peer_address("tcp://[::1]:5000"),
            Ok("[::1]:5000".parse().unwrap())
        );
        for bad in [
            "127.0.0.2:5000",
            "tcp://*:5000",
            "tcp://127.0.0.2",
            "tcp://h:99999",
        ] {
            assert!(peer_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_binds_wildcard_control() {
        let control = vec!["tcp://*:5000".to_owned(), "tcp://127.0.0.1:6000".to_owned()];
        assert_eq!(
            on_host(control.clone(), Some("127.0.0.2"), false),
            ["tcp://127.0.0.2:5000", "tcp://127.0.0.1:6000"]
        );
        assert_eq!(on_host(control.clone(), None, false), control);
        let default = vec!["tcp://127.0.0.1:5000".to_owned()];
        assert_eq!(
            on_host(default, Some("127.0.0.3"), true),
            ["tcp://127.0.0.3:5000"]
        );
    }

    #[test]
    fn the_id_is_kept_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let first = node_id(Some(dir.path())).unwrap();
        assert_eq!(first.len(), 16);
        assert_eq!(node_id(Some(dir.path())).unwrap(), first);
        assert_ne!(random_id().unwrap(), first);
        std::fs::write(dir.path().join(NODE_ID_FILE), "bad id!").unwrap();
        assert!(node_id(Some(dir.path())).is_err());
    }
}
