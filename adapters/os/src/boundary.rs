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
