//! Loading a native app library and checking it has the ABI this host speaks.

use std::path::{Path, PathBuf};

use cocaine_worker::native::{AbiVersionFn, CreateFn, DestroyFn, HandleFn, ABI_VERSION};

/// Why a library cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The dynamic loader refused it (missing file, not a shared library, missing
    /// dependency).
    #[error("cannot load {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// One of the ABI's functions is not exported.
    #[error("{path} is not a Cocaine native app: it does not export {symbol} (see cocaine.h)")]
    MissingSymbol { path: PathBuf, symbol: &'static str },
    /// It was built against another version of `cocaine.h`.
    #[error(
        "{path} was built for native ABI version {found}; this host speaks version {expected}"
    )]
    AbiVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// `cocaine_create` failed, with the library's reason.
    #[error("{path}: cocaine_create failed: {reason}")]
    Create { path: PathBuf, reason: String },
}

/// A loaded library with the four functions of the ABI.
#[derive(Debug)]
pub struct NativeLibrary {
    path: PathBuf,
    pub(crate) create: CreateFn,
    pub(crate) handle: HandleFn,
    pub(crate) destroy: DestroyFn,
    /// Kept last so the function pointers above never outlive the mapping. Loading the same
    /// file again (another thread worker) shares the mapping; it goes when the last closes.
    _library: libloading::Library,
}

impl NativeLibrary {
    /// Loads the library at `path` and checks its ABI version and functions.
    ///
    /// # Errors
    ///
    /// [`LoadError::Open`], [`LoadError::MissingSymbol`] or [`LoadError::AbiVersion`].
    pub fn load(path: &Path) -> Result<NativeLibrary, LoadError> {
        // SAFETY: loading runs the library's initialisers; loading app code is the point of
        // a native app, and the operator chose the library in the manifest.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let version: AbiVersionFn = symbol(&library, path, "cocaine_abi_version")?;
        // SAFETY: the symbol has the header's type, `unsigned int (void)`.
        let found = unsafe { version() };
        if found != ABI_VERSION {
            return Err(LoadError::AbiVersion {
                path: path.to_owned(),
                found,
                expected: ABI_VERSION,
            });
        }
        Ok(NativeLibrary {
            path: path.to_owned(),
            create: symbol(&library, path, "cocaine_create")?,
            handle: symbol(&library, path, "cocaine_handle")?,
            destroy: symbol(&library, path, "cocaine_destroy")?,
            _library: library,
        })
    }

    /// Where it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The function `name` of `library`, with the type the header gives it.
fn symbol<T: Copy>(
    library: &libloading::Library,
    path: &Path,
    name: &'static str,
) -> Result<T, LoadError> {
    let mut c_name = name.as_bytes().to_vec();
    c_name.push(0);
    // SAFETY: `T` is the header's function type for `name`; the pointer is used only while
    // `library` is loaded (it lives in the same `NativeLibrary`).
    unsafe { library.get::<T>(&c_name) }
        .map(|s| *s)
        .map_err(|_| LoadError::MissingSymbol {
            path: path.to_owned(),
            symbol: name,
        })
}
