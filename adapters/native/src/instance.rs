//! One app instance, and the job callbacks `cocaine_handle` gets.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::Arc;

use cocaine_worker::native::JobOps;
use cocaine_worker::{HandlerError, RequestStream, Response};

use crate::library::{LoadError, NativeLibrary};

/// Room for `cocaine_create`'s reason.
const ERROR_SIZE: usize = 4096;

/// An instance made by `cocaine_create`, destroyed when dropped. Jobs hold it through an
/// `Arc`, so a job still running when its worker ends (a retired thread) keeps it, and the
/// library, alive until it returns.
#[derive(Debug)]
pub struct Instance {
    library: Arc<NativeLibrary>,
    app: *mut c_void,
}

// SAFETY: cocaine.h lets the host call an instance from any thread, `concurrency` calls at
// once; honouring that bound is the worker protocol's job (the node never sends more).
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl Instance {
    /// Calls `cocaine_create` with `args`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Create`] with the library's reason (or a NUL in `args`).
    pub fn create(library: Arc<NativeLibrary>, args: &str) -> Result<Instance, LoadError> {
        let fail = |reason: String| LoadError::Create {
            path: library.path().to_owned(),
            reason,
        };
        let c_args = CString::new(args).map_err(|_| fail("args contain a NUL byte".to_owned()))?;
        let mut app: *mut c_void = std::ptr::null_mut();
        let mut error = vec![0 as c_char; ERROR_SIZE];
        // SAFETY: the header's contract: a NUL-terminated string, an out-pointer, and a
        // buffer of ERROR_SIZE bytes.
        let rc =
            unsafe { (library.create)(c_args.as_ptr(), &mut app, error.as_mut_ptr(), ERROR_SIZE) };
        if rc != 0 {
            // Whatever the library wrote, NUL-terminated within the buffer.
            if let Some(last) = error.last_mut() {
                *last = 0;
            }
            // SAFETY: NUL-terminated just above.
            let reason = unsafe { CStr::from_ptr(error.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            let reason = if reason.is_empty() {
                format!("returned {rc} without a reason")
            } else {
                reason
            };
            return Err(fail(reason));
        }
        Ok(Instance { library, app })
    }

    /// Runs one job through `cocaine_handle`: its request from `request`, its reply to
    /// `response`.
    ///
    /// # Errors
    ///
    /// A [`HandlerError`] for a job the library failed without saying why (non-zero return,
    /// 502), or an event name it cannot be given (400).
    pub fn handle(
        &self,
        request: RequestStream,
        response: &mut Response,
    ) -> Result<(), HandlerError> {
        let event = CString::new(request.event())
            .map_err(|_| HandlerError::with_code(400, "the event name contains a NUL byte"))?;
        let mut job = Job {
            request,
            chunk: Vec::new(),
            response,
            ended: false,
        };
        // SAFETY: the instance is live, `event` NUL-terminated, `OPS` static, and `job`
        // outlives the call; the callbacks cast it back to `Job`.
        let rc = unsafe {
            (self.library.handle)(
                self.app,
                event.as_ptr(),
                &OPS,
                (&mut job as *mut Job<'_>).cast(),
            )
        };
        if rc != 0 && !job.ended {
            return Err(HandlerError::new(format!(
                "cocaine_handle returned {rc} for event {:?}",
                job.request.event()
            )));
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: made by cocaine_create; no call runs (every job holds an Arc of `self`).
        unsafe { (self.library.destroy)(self.app) };
    }
}

/// What the callbacks work on during one `cocaine_handle` call.
struct Job<'a> {
    request: RequestStream,
    /// The chunk the last `read` returned, kept until the next one (the header's promise).
    chunk: Vec<u8>,
    response: &'a mut Response,
    /// `error` was called.
    ended: bool,
}

static OPS: JobOps = JobOps {
    read: job_read,
    write: job_write,
    error: job_error,
};

/// # Safety
///
/// `job` is the `Job` of a running `cocaine_handle` call, on the thread that runs it.
unsafe fn job<'a, 'b>(job: *mut c_void) -> &'a mut Job<'b> {
    // SAFETY: the caller's promise.
    unsafe { &mut *job.cast::<Job<'b>>() }
}

unsafe extern "C" fn job_read(
    handle: *mut c_void,
    data: *mut *const c_void,
    size: *mut usize,
) -> c_int {
    if handle.is_null() || data.is_null() || size.is_null() {
        return -1;
    }
    // SAFETY: the library passes back the job it was given, during the call.
    let job = unsafe { job(handle) };
    let rc = match job.request.next() {
        Some(chunk) => {
            job.chunk = chunk;
            1
        }
        None if job.response.is_cancelled() => -1,
        None => 0,
    };
    let (ptr, len) = if rc == 1 {
        (job.chunk.as_ptr().cast::<c_void>(), job.chunk.len())
    } else {
        (std::ptr::null(), 0)
    };
    // SAFETY: non-null out-pointers from the library.
    unsafe {
        *data = ptr;
        *size = len;
    }
    rc
}

unsafe extern "C" fn job_write(handle: *mut c_void, data: *const c_void, size: usize) -> c_int {
    if handle.is_null() || (data.is_null() && size > 0) {
        return -1;
    }
    // SAFETY: as in `job_read`.
    let job = unsafe { job(handle) };
    let bytes: &[u8] = if size == 0 {
        &[]
    } else {
        // SAFETY: the library passes `size` readable bytes at `data`.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) }
    };
    match job.response.write(bytes) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

unsafe extern "C" fn job_error(handle: *mut c_void, code: c_uint, message: *const c_char) -> c_int {
    if handle.is_null() {
        return -1;
    }
    // SAFETY: as in `job_read`.
    let job = unsafe { job(handle) };
    let message = if message.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string from the library.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    };
    job.ended = true;
    match job.response.error(code, &message) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}
