//! Loading native libraries and serving them, with small C libraries compiled here by the
//! system's C compiler (`$CC`, default `cc`) against `include/cocaine.h` in strict C89, so
//! the header's C89 promise is checked too.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cocaine_core::codec::worker::{self, JobMeta, WorkerMessage};
use cocaine_core::codec::FrameDecoder;
use cocaine_native::{serve, Instance, LoadError, NativeLibrary};
use cocaine_worker::Config;

const PATIENCE: Duration = Duration::from_secs(5);

/// A complete app: `echo` echoes chunks, `sleep` sleeps the ms in its request then writes
/// it (ignoring cancels), `fail` fails with 418, `bad` returns non-zero without a reason;
/// create fails when args are "refuse".
const GOOD: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cocaine.h"
struct cocaine_app { int unused; };
unsigned int cocaine_abi_version(void) { return COCAINE_ABI_VERSION; }
int cocaine_create(const char *args, cocaine_app **app, char *error, size_t error_size) {
    if (strcmp(args, "refuse") == 0) {
        strncpy(error, "refused: no config", error_size - 1);
        error[error_size - 1] = 0;
        return 1;
    }
    *app = (cocaine_app *) malloc(sizeof(cocaine_app));
    return 0;
}
int cocaine_handle(cocaine_app *app, const char *event, const cocaine_job_ops *ops,
                   cocaine_job *job) {
    const void *data;
    size_t size;
    char body[64];
    size_t len = 0;
    (void) app;
    if (strcmp(event, "echo") == 0) {
        while (ops->read(job, &data, &size) == 1) {
            if (ops->write(job, data, size) != 0) return 0;
        }
        return 0;
    }
    while (ops->read(job, &data, &size) == 1) {
        if (len + size < sizeof body) { memcpy(body + len, data, size); len += size; }
    }
    body[len] = 0;
    if (strcmp(event, "sleep") == 0) {
        struct timespec ts;
        long ms = atol(body);
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
        ops->write(job, body, len);
        return 0;
    }
    if (strcmp(event, "fail") == 0) {
        ops->error(job, 418, "teapot");
        return 1;
    }
    return 7;
}
void cocaine_destroy(cocaine_app *app) { free(app); }
"#;

const NO_HANDLE: &str = r#"
#include "cocaine.h"
unsigned int cocaine_abi_version(void) { return COCAINE_ABI_VERSION; }
int cocaine_create(const char *args, cocaine_app **app, char *error, size_t error_size) {
    (void) args; (void) error; (void) error_size; *app = 0; return 0;
}
void cocaine_destroy(cocaine_app *app) { (void) app; }
"#;

const WRONG_ABI: &str = r#"
#include "cocaine.h"
unsigned int cocaine_abi_version(void) { return 99; }
"#;

const SILENT_CREATE_FAILURE: &str = r#"
#include "cocaine.h"
unsigned int cocaine_abi_version(void) { return COCAINE_ABI_VERSION; }
int cocaine_create(const char *args, cocaine_app **app, char *error, size_t error_size) {
    (void) args; (void) app; (void) error; (void) error_size; return 3;
}
int cocaine_handle(cocaine_app *app, const char *event, const cocaine_job_ops *ops,
                   cocaine_job *job) {
    (void) app; (void) event; (void) ops; (void) job; return 0;
}
void cocaine_destroy(cocaine_app *app) { (void) app; }
"#;

/// Compiles `source` into `dir/name.so`.
fn build(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("lib{name}.so"));
    std::fs::write(&c, source).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .args([
            "-std=c89",
            "-pedantic",
            "-Wall",
            "-Werror",
            "-D_POSIX_C_SOURCE=199309L",
        ])
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg("-I")
        .arg(&include)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} (install one): {e}"));
    assert!(
        out.status.success(),
        "compiling {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

#[test]
fn a_missing_file_is_an_open_error() {
    let err = NativeLibrary::load(Path::new("/nonexistent/libnothing.so")).unwrap_err();
    assert!(matches!(err, LoadError::Open { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/libnothing.so"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_no_library_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libtext.so");
    std::fs::write(&path, "not a library").unwrap();
    let err = NativeLibrary::load(&path).unwrap_err();
    assert!(matches!(err, LoadError::Open { .. }), "{err}");
}

#[test]
fn a_missing_symbol_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "nohandle", NO_HANDLE);
    let err = NativeLibrary::load(&so).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::MissingSymbol {
                symbol: "cocaine_handle",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("does not export cocaine_handle"),
        "{err}"
    );
}

#[test]
fn a_wrong_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "wrongabi", WRONG_ABI);
    let err = NativeLibrary::load(&so).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::AbiVersion {
                found: 99,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_failed_create_carries_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let library = Arc::new(NativeLibrary::load(&build(dir.path(), "good", GOOD)).unwrap());
    let err = Instance::create(library.clone(), "refuse").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cocaine_create failed: refused: no config",
            library.path().display()
        )
    );
    assert!(Instance::create(library.clone(), "ok").is_ok());
    let err = Instance::create(library, "nul\0inside").unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");

    let silent =
        Arc::new(NativeLibrary::load(&build(dir.path(), "silent", SILENT_CREATE_FAILURE)).unwrap());
    let err = Instance::create(silent, "").unwrap_err();
    assert!(
        err.to_string().contains("returned 3 without a reason"),
        "{err}"
    );
}

/// The node's side of one native worker served on a thread of this test.
struct Node {
    stream: UnixStream,
    decoder: FrameDecoder,
    worker: thread::JoinHandle<Result<(), cocaine_native::ServeError>>,
}

impl Node {
    fn start(dir: &Path, library: PathBuf, args: &str) -> Node {
        let socket = dir.join("w.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let config = Config {
            socket,
            worker_id: "w-test".into(),
            app: "test".into(),
            heartbeat: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            max_message: 1 << 20,
        };
        let args = args.to_owned();
        let worker = thread::spawn(move || serve(config, &library, &args));
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut node = Node {
            stream,
            decoder: FrameDecoder::new(1 << 20),
            worker,
        };
        assert!(matches!(node.expect(), WorkerMessage::Handshake { .. }));
        node
    }

    fn send(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        let mut buf = BytesMut::new();
        encode(&mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    fn job(&mut self, sid: u64, event: &str, chunks: &[&[u8]]) {
        self.send(|b| {
            worker::encode_invoke(b, sid, event, &JobMeta::default());
            for chunk in chunks {
                worker::encode_chunk(b, sid, chunk);
            }
            worker::encode_choke(b, sid);
        });
    }

    /// The next message that is not a heartbeat.
    fn expect(&mut self) -> WorkerMessage {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.decoder.next_frame().unwrap() {
                match WorkerMessage::decode_bytes(&frame).unwrap() {
                    WorkerMessage::Heartbeat => continue,
                    msg => return msg,
                }
            }
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the worker closed the channel"),
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("no message from the worker: {e}"),
            }
        }
    }
}

fn chunk(sid: u64, data: &[u8]) -> WorkerMessage {
    WorkerMessage::Chunk {
        sid,
        data: bytes::Bytes::copy_from_slice(data),
    }
}

fn error(sid: u64, code: u32, message: &str) -> WorkerMessage {
    WorkerMessage::Error {
        sid,
        code,
        message: message.into(),
    }
}

#[test]
fn jobs_reach_the_library_and_its_replies_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "good", GOOD);
    let mut node = Node::start(dir.path(), so, "args");
    node.job(1, "echo", &[b"a", b"bc"]);
    assert_eq!(node.expect(), chunk(1, b"a"));
    assert_eq!(node.expect(), chunk(1, b"bc"));
    assert_eq!(node.expect(), WorkerMessage::Choke { sid: 1 });
    node.job(2, "fail", &[]);
    assert_eq!(node.expect(), error(2, 418, "teapot"));
    node.job(3, "other", &[]);
    assert_eq!(
        node.expect(),
        error(3, 502, "cocaine_handle returned 7 for event \"other\"")
    );
    node.job(4, "nul\0event", &[]);
    assert_eq!(
        node.expect(),
        error(4, 400, "the event name contains a NUL byte")
    );
    // The node hanging up ends the worker cleanly.
    drop(node.stream);
    assert!(node.worker.join().unwrap().is_ok());
}

#[test]
fn a_cancel_is_answered_when_the_handler_returns() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "good", GOOD);
    let mut node = Node::start(dir.path(), so, "");
    node.job(1, "sleep", &[b"400"]);
    let started = Instant::now();
    node.send(|b| worker::encode_cancel(b, 1));
    // Not at once: the library still runs the call; its reply is replaced by the 499.
    assert_eq!(node.expect(), error(1, 499, "cancelled"));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered after {:?}",
        started.elapsed()
    );
    node.job(2, "echo", &[b"next"]);
    assert_eq!(node.expect(), chunk(2, b"next"));
    assert_eq!(node.expect(), WorkerMessage::Choke { sid: 2 });
}

#[test]
fn a_library_that_fails_to_create_never_connects() {
    let dir = tempfile::tempdir().unwrap();
    let so = build(dir.path(), "good", GOOD);
    let config = Config {
        socket: dir.path().join("never.sock"),
        worker_id: "w".into(),
        app: "test".into(),
        heartbeat: Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        max_message: 1 << 20,
    };
    let err = serve(config, &so, "refuse").unwrap_err();
    assert!(err.to_string().contains("refused: no config"), "{err}");
}
