//! What every Cocaine runtime needs from the operating system, written once: ZeroMQ
//! endpoints (with the interface names libzmq cannot resolve by itself), worker processes
//! (spawned in their own process group, stderr captured, signalled as a group) and the Unix
//! socket each worker talks over; and [`host`], the node's event loop, written once. A runtime
//! only implements [`host::Runtime`] (watch descriptors, wait, tell the time) and hands it to
//! [`host::Host::run`].
//!
//! Native apps on the thread backend run on threads of the node ([`thread_worker`]), over
//! the same worker channel as processes.
//!
//! Other threads feed a running node through its [`inbox::Inbox`]: the [`store`] thread, which
//! writes the app store so no fsync blocks the loop, the [`folder`] watcher of
//! `cocaine node --watch`, and the [`fs_watch`] thread of filesystem-monitor tasks.

pub mod boundary;
pub mod channel;
pub mod code_check;
pub mod endpoint;
pub mod folder;
pub mod fork_server;
pub mod fs_watch;
pub mod host;
pub mod inbox;
pub mod key_folder;
pub mod lines;
pub mod process;
pub mod store;
pub mod tcp;
pub mod thread_worker;
pub mod udp;
pub mod write_queue;
pub mod zmq_endpoint;
pub mod zmtp_endpoint;
