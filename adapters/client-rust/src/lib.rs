//! A client for Cocaine's native protocol (docs/protocol.md §2) over a ZeroMQ DEALER socket.
//!
//! The node's `native-server` tasks (and node-to-node forwarding) speak this protocol: the
//! client opens a request under a sid of its choosing, streams request chunks and an end, and
//! gets reply chunks and exactly one end or error back. Many requests may be in flight on one
//! connection.
//!
//! ```no_run
//! use std::time::Duration;
//! use cocaine_client::{Client, ClientError, Policy, ReplyKind};
//!
//! fn main() -> Result<(), ClientError> {
//!     let mut client = Client::connect("tcp://127.0.0.1:10053")?;
//!     // One-shot: the whole request, the whole reply.
//!     let chunks = client.call("echo", b"hello")?;
//!     assert_eq!(chunks, vec![b"hello".to_vec()]);
//!     // Streaming and pipelining: replies name their sid.
//!     let a = client.open("stream_echo", Policy::default())?;
//!     client.send(a, b"one")?;
//!     client.end(a)?;
//!     while let Some(reply) = client.recv(Duration::from_secs(1))? {
//!         if let ReplyKind::Chunk(data) = &reply.kind {
//!             println!("{}: {:?}", reply.sid, data);
//!         }
//!         if reply.is_terminal() {
//!             break;
//!         }
//!     }
//!     println!("round trip {:?}", client.ping(Duration::from_secs(1))?);
//!     Ok(())
//! }
//! ```
//!
//! For an app that runs on several nodes, [`ClusterClient`] resolves it from any node and
//! calls the node with the least load of two drawn at random, retrying a 503 elsewhere
//! (docs/cluster.md).
//!
//! Signed requests: [`Client::sign_as`] makes every later request signed by a user for one
//! app (docs/security.md); a [`Signer`] over a private key comes from `cocaine-keys`.
//! [`Client::session_as`] does the same with a session key: one signature opens a session,
//! later requests carry an HMAC (a [`KeyUnwrapper`] opens the key the node sealed).
//! With [`Client::sign_as`], [`Client::seal_to`] then seals every request's body for the node's public key and opens
//! the sealed replies with the user's key (an [`Unsealer`], also from `cocaine-keys`).
//!
//! Map of the crate: `client` holds [`Client`] and its bookkeeping of sids; `cluster`
//! [`ClusterClient`]; `signing` the signed opens; `session` requests in a session;
//! `seal` sealed bodies; `wire` the socket
//! and the queue of received frames; `reply` the [`Reply`] type; `error` [`ClientError`].
//! Messages are encoded and decoded with `cocaine-core`'s codec, the same one the node uses.

mod client;
mod cluster;
mod error;
mod reply;
mod seal;
mod session;
mod signing;
mod wire;

pub use client::{Client, DEFAULT_TIMEOUT};
pub use cluster::{reachable, ClusterClient, ClusterError, ClusterReply, NodeEntry, REFRESH};
pub use cocaine_core::auth::session::KeyUnwrapper;
pub use cocaine_core::auth::{Signer, Unsealer};
pub use cocaine_core::codec::native::Policy;
pub use error::ClientError;
pub use reply::{Reply, ReplyKind, Sid};
pub use wire::DEFAULT_MAX_MESSAGE;
pub use zmq;
