//! Native Cocaine apps: shared libraries with the C ABI of `include/cocaine.h` (docs/protocol.md
//! §9), run as workers that speak the ordinary worker protocol (docs/protocol.md §1).
//!
//! [`NativeLibrary`] loads a library and checks its ABI; [`Instance`] is one app instance
//! made from it; [`serve`] runs one worker: it loads the library, creates the instance, and
//! hands every job to `cocaine_handle` through the Rust worker SDK (which does the protocol,
//! the heartbeats and the threads). Both backends run [`serve`]:
//! - `backend: process`: the `cocaine-native-host` binary, a child of the node like any
//!   worker (`cocaine-native-host --socket PATH LIBRARY ARGS`);
//! - `backend: thread`: the node's runtime calls [`serve`] on a thread of its own, connected
//!   over the same kind of Unix socket (see `cocaine_os::thread_worker`).

mod instance;
mod library;
mod serve;

pub use instance::Instance;
pub use library::{LoadError, NativeLibrary};
pub use serve::{serve, ServeError};
