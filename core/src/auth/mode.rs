//! Whether an endpoint needs signed requests: the control endpoint's mode (`--auth`) and each
//! native-protocol task's (the manifest's `security.auth`).

/// Whether a signature is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Signatures are neither needed nor checked.
    Off,
    /// Unsigned requests pass; a signed request must verify.
    Optional,
    /// Every request must be signed and verify.
    Required,
}

impl AuthMode {
    /// Reads `required`, `optional` or `off`.
    pub fn parse(text: &str) -> Option<AuthMode> {
        match text {
            "off" => Some(AuthMode::Off),
            "optional" => Some(AuthMode::Optional),
            "required" => Some(AuthMode::Required),
            _ => None,
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Off => "off",
            AuthMode::Optional => "optional",
            AuthMode::Required => "required",
        }
    }

    /// The default for endpoints bound at these addresses: `optional` when every one is local
    /// to the machine (loopback TCP, `ipc://`, `inproc://`), `required` otherwise.
    pub fn default_for<'a>(addresses: impl IntoIterator<Item = &'a str>) -> AuthMode {
        if addresses.into_iter().all(is_local_address) {
            AuthMode::Optional
        } else {
            AuthMode::Required
        }
    }
}

/// True for an address only this machine can reach: `ipc://`, `inproc://`, and `tcp://` on
/// `127.x.y.z`, `localhost` or `[::1]`. A wildcard or an interface name is not.
pub fn is_local_address(address: &str) -> bool {
    if address.starts_with("ipc://") || address.starts_with("inproc://") {
        return true;
    }
    let Some(rest) = address.strip_prefix("tcp://") else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((host, _port)) => host,
        None => rest,
    };
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}
