//! `cocaine node --etcd URL [--etcd-prefix PREFIX]` (docs/cluster.md, "etcd"): the flags, the
//! registry's tombstones read before the node starts, and the etcd thread.

use std::time::Duration;

use clap::Args;
use cocaine_core::cluster::etcd::{Layout, DEFAULT_PREFIX};
use cocaine_core::node::{DiscoveryConfig, Input};
use cocaine_core::process::LogLevel;
use cocaine_etcd::{EtcdConfig, EtcdThread};
use cocaine_os::inbox::Inbox;

use crate::log::Logger;

/// How long the node waits for etcd's registry before it starts without it.
const STARTUP_READ: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct EtcdArgs {
    /// Find peers, and keep the registry of replicated apps, in etcd at this client URL
    /// (http://HOST:PORT); repeat it or give a comma-separated list for several members of
    /// the etcd cluster.
    #[arg(long = "etcd", value_name = "URL", value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Where in etcd this cluster's keys live: members under PREFIXmembers/, apps under
    /// PREFIXapps/.
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, value_parser = parse_prefix)]
    pub etcd_prefix: Layout,
}

impl EtcdArgs {
    pub fn enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// The endpoints, checked: plain http (the client is built without TLS).
    pub fn checked(&self) -> Result<(), String> {
        for e in &self.endpoints {
            let rest = e.strip_prefix("http://").ok_or_else(|| {
                if e.starts_with("https://") {
                    format!("--etcd {e}: TLS is not built in; use http:// on a trusted network")
                } else {
                    format!("--etcd {e}: not http://HOST:PORT")
                }
            })?;
            let port = rest.rsplit_once(':').map(|(_, p)| p);
            if port.is_none_or(|p| p.parse::<u16>().is_err()) {
                return Err(format!("--etcd {e}: not http://HOST:PORT"));
            }
        }
        Ok(())
    }

    /// The registry's tombstones, to be taken before the store's apps; none (and a warning)
    /// when etcd does not answer in time.
    pub fn tombstones(&self, logger: &Logger) -> Vec<Input> {
        match cocaine_etcd::read_tombstones(&self.endpoints, &self.etcd_prefix, STARTUP_READ) {
            Ok((inputs, dropped)) => {
                for line in dropped {
                    logger.log(LogLevel::Warn, &line);
                }
                if !inputs.is_empty() {
                    let message = format!("etcd: {} tombstones in the registry", inputs.len());
                    logger.log(LogLevel::Info, &message);
                }
                inputs
            }
            Err(e) => {
                let message = format!(
                    "etcd ({}): cannot read the app registry at start: {e}; starting without it",
                    self.endpoints.join(",")
                );
                logger.log(LogLevel::Error, &message);
                Vec::new()
            }
        }
    }

    /// Starts the etcd thread for the node of `discovery`.
    pub fn start(
        &self,
        discovery: &DiscoveryConfig,
        inbox: Inbox,
        logger: &Logger,
    ) -> Result<EtcdThread, String> {
        let config = EtcdConfig {
            endpoints: self.endpoints.clone(),
            layout: self.etcd_prefix.clone(),
            node_id: discovery.node_id.clone(),
            interval: discovery.interval,
        };
        let thread_logger = logger.clone();
        let log = Box::new(move |level, message: &str| thread_logger.log(level, message));
        EtcdThread::spawn(config, inbox, log)
            .map_err(|e| format!("cannot start the etcd thread: {e}"))
    }
}

fn parse_prefix(text: &str) -> Result<Layout, String> {
    Layout::new(text).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        etcd: EtcdArgs,
    }

    #[test]
    fn endpoints_repeat_or_come_as_a_list() {
        let cli = Cli::parse_from([
            "x",
            "--etcd",
            "http://127.0.0.1:2379,http://127.0.0.2:2379",
            "--etcd",
            "http://127.0.0.3:2379",
        ]);
        assert_eq!(cli.etcd.endpoints.len(), 3);
        assert!(cli.etcd.checked().is_ok());
        assert_eq!(cli.etcd.etcd_prefix.prefix(), "/cocaine/");
        let cli = Cli::parse_from(["x", "--etcd-prefix", "/prod/"]);
        assert!(!cli.etcd.enabled());
        assert_eq!(cli.etcd.etcd_prefix.prefix(), "/prod/");
        assert!(Cli::try_parse_from(["x", "--etcd-prefix", "prod"]).is_err());
        for bad in ["127.0.0.1:2379", "https://e:2379", "http://e", "http://e:x"] {
            let cli = Cli::parse_from(["x", "--etcd", bad]);
            assert!(cli.etcd.checked().is_err(), "{bad}");
        }
    }
}
