//! The native app ABI (docs/protocol.md §9, `adapters/native/include/cocaine.h`) from Rust: the C
//! types both sides share, and [`export_native!`](crate::export_native), which makes a Rust
//! `cdylib` a native app.
//!
//! ```no_run
//! use cocaine_worker::native::{NativeApp, NativeRequest, NativeResponse};
//! use cocaine_worker::HandlerError;
//!
//! struct Echo;
//!
//! impl NativeApp for Echo {
//!     fn create(_args: &str) -> Result<Self, String> {
//!         Ok(Echo)
//!     }
//!     fn handle(&self, event: &str, request: &mut NativeRequest<'_>,
//!               response: &mut NativeResponse<'_>) -> Result<(), HandlerError> {
//!         for chunk in request {
//!             response.write(&chunk)?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! cocaine_worker::export_native!(Echo);
//! ```
//!
//! The thread rules of the header hold: one instance per worker, `handle` called by at most
//! `concurrency` threads at once (hence `Sync`).

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{HandlerError, ResponseError};

/// `COCAINE_ABI_VERSION` of the header.
pub const ABI_VERSION: c_uint = 1;

/// `struct cocaine_job_ops`: what a handler can do with its job.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct JobOps {
    /// Next request chunk: 1 with data, 0 at the end, -1 when cancelled.
    pub read:
        unsafe extern "C" fn(job: *mut c_void, data: *mut *const c_void, size: *mut usize) -> c_int,
    /// One reply chunk: 0, or -1 when the job is cancelled or over.
    pub write: unsafe extern "C" fn(job: *mut c_void, data: *const c_void, size: usize) -> c_int,
    /// Ends the job with an error: 0, or -1 as `write`.
    pub error:
        unsafe extern "C" fn(job: *mut c_void, code: c_uint, message: *const c_char) -> c_int,
}

/// `cocaine_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> c_uint;
/// `cocaine_create`.
pub type CreateFn = unsafe extern "C" fn(
    args: *const c_char,
    app: *mut *mut c_void,
    error: *mut c_char,
    error_size: usize,
) -> c_int;
/// `cocaine_handle`.
pub type HandleFn = unsafe extern "C" fn(
    app: *mut c_void,
    event: *const c_char,
    ops: *const JobOps,
    job: *mut c_void,
) -> c_int;
/// `cocaine_destroy`.
pub type DestroyFn = unsafe extern "C" fn(app: *mut c_void);

/// A native app written in Rust; [`export_native!`](crate::export_native) exports it.
pub trait NativeApp: Send + Sync + Sized + 'static {
    /// Makes the worker's instance from the manifest's `args`; `Err` stops the app with
    /// that reason.
    fn create(args: &str) -> Result<Self, String>;

    /// Handles one job. `Ok(())` ends the reply; `Err` fails the job with its code (502 by
    /// default). A panic fails the job with 502.
    fn handle(
        &self,
        event: &str,
        request: &mut NativeRequest<'_>,
        response: &mut NativeResponse<'_>,
    ) -> Result<(), HandlerError>;
}

/// The request of one job: its chunks as they arrive.
#[derive(Debug)]
pub struct NativeRequest<'a> {
    ops: &'a JobOps,
    job: *mut c_void,
    cancelled: bool,
}

impl NativeRequest<'_> {
    /// Whether reading stopped because the job was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancelled
    }

    /// The rest of the request as one buffer.
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        for chunk in self {
            all.extend_from_slice(&chunk);
        }
        all
    }
}

impl Iterator for NativeRequest<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut data: *const c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: the host gave these ops and job to this call of cocaine_handle, which is
        // still running; the out-pointers are live locals.
        let rc = unsafe { (self.ops.read)(self.job, &mut data, &mut size) };
        match rc {
            1 if size == 0 || data.is_null() => Some(Vec::new()),
            // SAFETY: read() returned `size` valid bytes at `data`, until the next read.
            1 => Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) }.to_vec()),
            0 => None,
            _ => {
                self.cancelled = true;
                None
            }
        }
    }
}

/// The reply of one job.
#[derive(Debug)]
pub struct NativeResponse<'a> {
    ops: &'a JobOps,
    job: *mut c_void,
}

impl NativeResponse<'_> {
    /// Sends one reply chunk.
    ///
    /// # Errors
    ///
    /// [`ResponseError::Cancelled`] once the job is cancelled or over: stop and return.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ResponseError> {
        // SAFETY: as in `NativeRequest::next`; `chunk` is live for the call.
        let rc = unsafe { (self.ops.write)(self.job, chunk.as_ptr().cast(), chunk.len()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(ResponseError::Cancelled)
        }
    }
}

/// What `cocaine_create` does for `A`; called by [`export_native!`](crate::export_native).
///
/// # Safety
///
/// The arguments must be those of a `cocaine_create` call as the header defines it.
pub unsafe fn create<A: NativeApp>(
    args: *const c_char,
    app: *mut *mut c_void,
    error: *mut c_char,
    error_size: usize,
) -> c_int {
    let args = if args.is_null() {
        String::new()
    } else {
        // SAFETY: the host passes a NUL-terminated string.
        unsafe { CStr::from_ptr(args) }
            .to_string_lossy()
            .into_owned()
    };
    let outcome = catch_unwind(|| A::create(&args)).unwrap_or_else(|panic| {
        Err(format!(
            "create panicked: {}",
            crate::handler::panic_message(panic.as_ref())
        ))
    });
    match outcome {
        Ok(instance) => {
            if !app.is_null() {
                // SAFETY: `app` is the host's out-pointer.
                unsafe { *app = Box::into_raw(Box::new(instance)).cast() };
            }
            0
        }
        Err(reason) => {
            // SAFETY: the host gave `error_size` writable bytes at `error`.
            unsafe { write_c_string(error, error_size, &reason) };
            1
        }
    }
}

/// What `cocaine_handle` does for `A`; called by [`export_native!`](crate::export_native).
///
/// # Safety
///
/// The arguments must be those of a `cocaine_handle` call, on an instance made by
/// [`create`] for the same `A`.
pub unsafe fn handle<A: NativeApp>(
    app: *mut c_void,
    event: *const c_char,
    ops: *const JobOps,
    job: *mut c_void,
) -> c_int {
    if app.is_null() || ops.is_null() {
        return 1;
    }
    // SAFETY: the instance is an `A` boxed by `create`, alive until `destroy`; shared access
    // only, so overlapping calls are fine (`A: Sync`).
    let instance = unsafe { &*app.cast::<A>() };
    // SAFETY: the host keeps `ops` alive for the call.
    let ops = unsafe { &*ops };
    let event = if event.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string from the host.
        unsafe { CStr::from_ptr(event) }
            .to_string_lossy()
            .into_owned()
    };
    let mut request = NativeRequest {
        ops,
        job,
        cancelled: false,
    };
    let mut response = NativeResponse { ops, job };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        instance.handle(&event, &mut request, &mut response)
    }))
    .unwrap_or_else(|panic| {
        Err(HandlerError::new(crate::handler::panic_message(
            panic.as_ref(),
        )))
    });
    match outcome {
        Ok(()) => 0,
        Err(err) => {
            let message = err.message.replace('\0', " ");
            let message = std::ffi::CString::new(message).unwrap_or_default();
            // SAFETY: as above; `message` is NUL-terminated and live for the call.
            unsafe { (ops.error)(job, err.wire_code(), message.as_ptr()) };
            1
        }
    }
}

/// What `cocaine_destroy` does for `A`; called by [`export_native!`](crate::export_native).
///
/// # Safety
///
/// `app` must come from [`create`] for the same `A`, and no call may use it any more.
pub unsafe fn destroy<A: NativeApp>(app: *mut c_void) {
    if !app.is_null() {
        // SAFETY: boxed by `create`, destroyed once.
        let instance = unsafe { Box::from_raw(app.cast::<A>()) };
        // A panicking Drop must not unwind into C.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(instance)));
    }
}

/// Copies `text` into a C buffer of `size` bytes, truncated on a character boundary and
/// NUL-terminated.
///
/// # Safety
///
/// `buf` must be null or point to `size` writable bytes.
pub unsafe fn write_c_string(buf: *mut c_char, size: usize, text: &str) {
    if buf.is_null() || size == 0 {
        return;
    }
    let mut len = text.len().min(size - 1);
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    let bytes = text.as_bytes().get(..len).unwrap_or_default();
    // SAFETY: `len + 1 <= size` bytes are written into the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), len);
        *buf.add(len) = 0;
    }
}

/// Exports a [`NativeApp`] type as the four functions of the native ABI, from a crate built
/// as a `cdylib`:
///
/// ```text
/// cocaine_worker::export_native!(Echo);
/// ```
#[macro_export]
macro_rules! export_native {
    ($app:ty) => {
        /// The native ABI version (`cocaine_abi_version`).
        #[no_mangle]
        pub extern "C" fn cocaine_abi_version() -> ::std::ffi::c_uint {
            $crate::native::ABI_VERSION
        }

        /// `cocaine_create` of the native ABI.
        ///
        /// # Safety
        ///
        /// Called by the Cocaine host as `cocaine.h` says.
        #[no_mangle]
        pub unsafe extern "C" fn cocaine_create(
            args: *const ::std::ffi::c_char,
            app: *mut *mut ::std::ffi::c_void,
            error: *mut ::std::ffi::c_char,
            error_size: usize,
        ) -> ::std::ffi::c_int {
            // SAFETY: the host calls it as the header says.
            unsafe { $crate::native::create::<$app>(args, app, error, error_size) }
        }

        /// `cocaine_handle` of the native ABI.
        ///
        /// # Safety
        ///
        /// Called by the Cocaine host as `cocaine.h` says.
        #[no_mangle]
        pub unsafe extern "C" fn cocaine_handle(
            app: *mut ::std::ffi::c_void,
            event: *const ::std::ffi::c_char,
            ops: *const $crate::native::JobOps,
            job: *mut ::std::ffi::c_void,
        ) -> ::std::ffi::c_int {
            // SAFETY: the host calls it as the header says.
            unsafe { $crate::native::handle::<$app>(app, event, ops, job) }
        }

        /// `cocaine_destroy` of the native ABI.
        ///
        /// # Safety
        ///
        /// Called by the Cocaine host as `cocaine.h` says.
        #[no_mangle]
        pub unsafe extern "C" fn cocaine_destroy(app: *mut ::std::ffi::c_void) {
            // SAFETY: the host calls it as the header says.
            unsafe { $crate::native::destroy::<$app>(app) }
        }
    };
}
