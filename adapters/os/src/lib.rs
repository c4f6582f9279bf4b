//! What every Cocaine runtime needs from the operating system, written once: ZeroMQ
//! endpoints (with the interface names libzmq cannot resolve by itself), worker processes
//! (spawned in their own process group, stderr captured, signalled as a group) and the Unix
//! socket each worker talks over. A runtime only adds readiness: it registers the file
//! descriptors these types expose with its poller and calls them when they are ready.

pub mod channel;
pub mod endpoint;
pub mod lines;
pub mod process;
pub mod zmq_endpoint;
