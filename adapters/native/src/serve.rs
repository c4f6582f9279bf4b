//! One native worker: load, create, serve jobs over the worker channel.

use std::path::Path;
use std::sync::Arc;

use cocaine_worker::{Config, Worker, WorkerError};

use crate::instance::Instance;
use crate::library::{LoadError, NativeLibrary};

/// Why a native worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The library could not be loaded or its instance made.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The worker channel failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// Loads `library`, creates an instance with `args` and serves jobs as the worker `config`
/// describes, until the node ends the channel. Every event goes to `cocaine_handle`. A cancel
/// is answered when the handler returns ([`Worker::defer_cancel`]), so a handler that ignores
/// it holds its slot and the node kills (or, for a thread, retires) the worker after
/// `termination-timeout`, instead of running a second call on the same instance.
///
/// # Errors
///
/// [`ServeError::Load`] before the worker connects (the node sees a worker that never
/// handshakes, with this reason on its stderr), [`ServeError::Worker`] if the channel breaks.
pub fn serve(config: Config, library: &Path, args: &str) -> Result<(), ServeError> {
    let library = Arc::new(NativeLibrary::load(library)?);
    let instance = Arc::new(Instance::create(library, args)?);
    Worker::new(config)
        .defer_cancel(true)
        .fallback_stream(move |request, mut response| instance.handle(request, &mut response))
        .run()?;
    Ok(())
}
