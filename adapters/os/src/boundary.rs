//! The core's boundary errors built from this crate's: each keeps the text the runtime
//! always gave, and its variant tells the core what kind of failure it is (a port in use is
//! not a bad interface name).

use std::io;

use cocaine_core::node::{BindError, SpawnError, StoreError};

use crate::endpoint::EndpointError;
use crate::tcp::TcpError;
use crate::zmq_endpoint::ZmqEndpointError;

impl From<ZmqEndpointError> for BindError {
    fn from(error: ZmqEndpointError) -> Self {
        let message = error.to_string();
        match error {
            ZmqEndpointError::Address(e) => from_endpoint(&e, message),
            ZmqEndpointError::Zmq { error, .. } => match error {
                zmq::Error::EADDRINUSE => BindError::AddressInUse(message),
                zmq::Error::EACCES => BindError::PermissionDenied(message),
                zmq::Error::EINVAL
                | zmq::Error::EPROTONOSUPPORT
                | zmq::Error::ENOCOMPATPROTO
                | zmq::Error::EADDRNOTAVAIL
                | zmq::Error::ENODEV => BindError::InvalidAddress(message),
                _ => BindError::Other(message),
            },
            ZmqEndpointError::NotZeromq => BindError::InvalidAddress(message),
        }
    }
}

impl From<TcpError> for BindError {
    fn from(error: TcpError) -> Self {
        let message = error.to_string();
        match error {
            TcpError::Address(e) => from_endpoint(&e, message),
            TcpError::Syntax { .. } | TcpError::Resolve { .. } => {
                BindError::InvalidAddress(message)
            }
            TcpError::Io { error } => bind_io(&error, message),
        }
    }
}

fn from_endpoint(error: &EndpointError, message: String) -> BindError {
    match error {
        EndpointError::UnknownHost { .. } => BindError::NoSuchInterface(message),
        EndpointError::Interfaces { .. } => BindError::Other(message),
    }
}

/// A bind's IO error, by kind.
pub fn bind_io(error: &io::Error, message: String) -> BindError {
    match error.kind() {
        io::ErrorKind::AddrInUse => BindError::AddressInUse(message),
        io::ErrorKind::PermissionDenied => BindError::PermissionDenied(message),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::InvalidInput => {
            BindError::InvalidAddress(message)
        }
        _ => BindError::Other(message),
    }
}

/// Starting a worker process failed with `error`; `message` says what was started.
pub fn spawn_io(error: &io::Error, message: String) -> SpawnError {
    match error.kind() {
        io::ErrorKind::NotFound => SpawnError::NotFound(message),
        io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied(message),
        _ => SpawnError::Other(message),
    }
}

/// A store operation failed: a name or package the store refuses, or the disk.
pub fn store_error(error: &cocaine_store::StoreError, message: String) -> StoreError {
    match error {
        cocaine_store::StoreError::Io { .. } => StoreError::Io(message),
        _ => StoreError::Rejected(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zmq_endpoint::ZmqEndpoint;
    use cocaine_core::node::SocketKind;

    #[test]
    fn a_port_in_use_and_an_unknown_interface_are_told_apart() {
        let ctx = zmq::Context::new();
        let first =
            ZmqEndpoint::open(&ctx, SocketKind::Router, "tcp://127.0.0.1:*", &[], None).unwrap();
        let taken = first.address().to_owned();
        let in_use = ZmqEndpoint::open(&ctx, SocketKind::Router, &taken, &[], None).unwrap_err();
        let in_use = BindError::from(in_use);
        assert!(matches!(in_use, BindError::AddressInUse(_)), "{in_use:?}");
        let nowhere = "tcp://no-such-interface0:5000";
        let unknown = ZmqEndpoint::open(&ctx, SocketKind::Router, nowhere, &[], None).unwrap_err();
        let unknown = BindError::from(unknown);
        assert!(
            matches!(&unknown, BindError::NoSuchInterface(m) if m.contains("no-such-interface0")),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_tcp_port_in_use_is_address_in_use_and_bad_syntax_an_invalid_address() {
        let first = crate::tcp::listen("tcp://127.0.0.1:*").unwrap();
        let port = first.local_addr().unwrap().port();
        let again = crate::tcp::listen(&format!("tcp://127.0.0.1:{port}")).unwrap_err();
        let again = BindError::from(again);
        assert!(matches!(again, BindError::AddressInUse(_)), "{again:?}");
        let bad = BindError::from(crate::tcp::listen("tcp://127.0.0.1").unwrap_err());
        assert!(matches!(bad, BindError::InvalidAddress(_)), "{bad:?}");
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let program = "/nonexistent/cocaine-no-such-program";
        let error = std::process::Command::new(program).spawn().unwrap_err();
        let spawn = spawn_io(&error, format!("cannot start {program:?}: {error}"));
        assert!(
            matches!(&spawn, SpawnError::NotFound(m) if m.contains(program)),
            "{spawn:?}"
        );
    }
}
