//! Fork servers: one Python process per app version that has imported the SDK and the app and
//! forks that version's workers on request (the Python side and its wire are in
//! `adapters/python/cocaine/zygote.py`), so a worker costs a fork instead of an interpreter
//! start and every import.
//!
//! The node keeps owning every worker: the fork server forks each through a middle process
//! that exits at once, and the node is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so the
//! worker becomes the node's own child, reaped, signalled and accounted for like one the node
//! started itself. A fork server is only ever a shortcut: while it is starting, after it died
//! or when it cannot be used, workers are started from their `argv` as always. One that dies
//! is started again on a later spawn, up to [`MAX_RESTARTS`] times per version; one whose app
//! is not safe to fork (a thread or a descriptor left open at import) is not used again.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use cocaine_core::node::{SpawnSpec, PYTHON_WORKER_ENTRY};
use cocaine_core::process::{LogLevel, Signal};
use cocaine_core::AppId;

use crate::process::WorkerProcess;

/// How often one version's fork server is started again after dying.
pub const MAX_RESTARTS: u32 = 3;

/// How long a fork request may take before the fork server is taken for hung.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// The variables that differ between workers; the fork server is started without them.
const PER_WORKER: [&str; 2] = ["COCAINE_SOCKET", "COCAINE_WORKER_ID"];

/// The most a request may be (the Python side refuses larger ones).
const MAX_REQUEST: usize = 1 << 20;

#[derive(Debug)]
struct Server {
    app: String,
    process: WorkerProcess,
    control: UnixStream,
    ready: bool,
}

/// The fork servers of the node's app versions.
#[derive(Debug, Default)]
pub struct ForkServers {
    servers: HashMap<AppId, Server>,
    /// Versions whose workers are started from `argv` only.
    given_up: HashSet<AppId>,
    restarts: HashMap<AppId, u32>,
    subreaper: bool,
    notes: Vec<(LogLevel, String)>,
}

impl ForkServers {
    /// A version is up: start its fork server and stop those of the app's other versions.
    pub fn prepare(&mut self, spec: &SpawnSpec) {
        let key = spec.worker.app();
        let others: Vec<AppId> = self
            .servers
            .iter()
            .filter(|(k, s)| **k != key && s.app == spec.app)
            .map(|(k, _)| *k)
            .collect();
        for other in others {
            self.stop(other);
        }
        if spec.fork && !self.servers.contains_key(&key) && !self.given_up.contains(&key) {
            self.start(spec);
        }
    }

    /// The app is gone: its fork servers stop.
    pub fn forget_app(&mut self, app: &str) {
        let keys: Vec<AppId> = self
            .servers
            .iter()
            .filter(|(_, s)| s.app == app)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.stop(key);
            self.restarts.remove(&key);
        }
    }

    /// A worker forked by its version's fork server, or None: start it from `argv` (the fork
    /// server is not ready, not safe, or failed; starting it is arranged meanwhile).
    pub fn fork(&mut self, spec: &SpawnSpec) -> Option<WorkerProcess> {
        if !spec.fork {
            return None;
        }
        let key = spec.worker.app();
        if self.given_up.contains(&key) {
            return None;
        }
        let newer = self
            .servers
            .iter()
            .any(|(k, s)| *k > key && s.app == spec.app);
        let Some(server) = self.servers.get_mut(&key) else {
            // An older version's late worker does not bring its fork server back.
            if !newer {
                self.start(spec);
            }
            return None;
        };
        if !server.ready {
            match check_ready(server) {
                Ok(true) => server.ready = true,
                Ok(false) => return None,
                Err(Refusal::Unsafe(reason)) => {
                    self.refuse(key, reason);
                    return None;
                }
                Err(Refusal::Broken(reason)) => {
                    self.fail(key, reason);
                    return None;
                }
            }
        }
        let server = self.servers.get_mut(&key)?;
        match request(server, spec) {
            Ok(process) => {
                let message = format!(
                    "{}: {} forked by its fork server (pid {})",
                    spec.app,
                    spec.worker,
                    process.pid()
                );
                self.note(LogLevel::Debug, message);
                Some(process)
            }
            Err(error) => {
                self.fail(key, format!("could not fork {}: {error}", spec.worker));
                None
            }
        }
    }

    /// Reaps fork servers that exited, with a note of what they wrote.
    pub fn reap(&mut self) {
        let exited: Vec<(AppId, String)> = self
            .servers
            .iter_mut()
            .filter_map(|(key, s)| {
                let status = s.process.try_wait().ok()??;
                Some((*key, format!("exited ({status})")))
            })
            .collect();
        for (key, what) in exited {
            // One that found the app unsafe to fork said why before leaving.
            let refused = match self.servers.get_mut(&key) {
                Some(server) if !server.ready => match check_ready(server) {
                    Err(Refusal::Unsafe(reason)) => Some(reason),
                    _ => None,
                },
                _ => None,
            };
            match refused {
                Some(reason) => self.refuse(key, reason),
                None => self.fail(key, what),
            }
        }
    }

    /// The fork server found its app unsafe to fork: its workers are started from `argv`.
    fn refuse(&mut self, key: AppId, reason: String) {
        if let Some(server) = self.servers.get(&key) {
            let message = format!(
                "{}: workers are started without a fork server: {reason}",
                server.app
            );
            self.note(LogLevel::Info, message);
        }
        self.given_up.insert(key);
        self.stop(key);
    }

    /// Whether `pid` is one of the fork servers.
    pub fn owns(&self, pid: u32) -> bool {
        self.servers.values().any(|s| s.process.pid() == pid)
    }

    /// Whether the node adopts orphans (set with the first fork server).
    pub fn is_subreaper(&self) -> bool {
        self.subreaper
    }

    pub fn take_notes(&mut self) -> Vec<(LogLevel, String)> {
        std::mem::take(&mut self.notes)
    }

    pub fn close_all(&mut self) {
        let keys: Vec<AppId> = self.servers.keys().copied().collect();
        for key in keys {
            self.stop(key);
        }
    }

    fn note(&mut self, level: LogLevel, message: String) {
        self.notes.push((level, message));
    }

    fn start(&mut self, spec: &SpawnSpec) {
        let key = spec.worker.app();
        let Some(argv) = server_argv(&spec.argv) else {
            self.given_up.insert(key);
            return;
        };
        if !self.subreaper {
            // SAFETY: prctl with integer arguments; no memory is touched.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                let error = io::Error::last_os_error();
                self.note(
                    LogLevel::Warn,
                    format!("fork servers are off: cannot adopt their workers: {error}"),
                );
                self.given_up.insert(key);
                return;
            }
            self.subreaper = true;
        }
        let env: Vec<(String, String)> = spec
            .env
            .iter()
            .filter(|(k, _)| !PER_WORKER.contains(&k.as_str()))
            .cloned()
            .collect();
        let started = UnixStream::pair().and_then(|(ours, theirs)| {
            let process = WorkerProcess::start(
                &argv,
                &env,
                spec.cwd.as_deref(),
                Stdio::from(OwnedFd::from(theirs)),
            )?;
            ours.set_nonblocking(true)?;
            Ok((ours, process))
        });
        match started {
            Ok((control, process)) => {
                self.note(
                    LogLevel::Debug,
                    format!("{}: fork server started (pid {})", spec.app, process.pid()),
                );
                self.servers.insert(
                    key,
                    Server {
                        app: spec.app.clone(),
                        process,
                        control,
                        ready: false,
                    },
                );
            }
            Err(error) => {
                self.note(
                    LogLevel::Warn,
                    format!("{}: cannot start a fork server: {error}", spec.app),
                );
                self.given_up.insert(key);
            }
        }
    }

    /// Stops a fork server for good (its workers live on: they are the node's children).
    fn stop(&mut self, key: AppId) {
        if let Some(mut server) = self.servers.remove(&key) {
            server.process.signal(Signal::Kill);
            let lines = output(&mut server.process);
            drop(server);
            self.note_output(key, lines);
        }
    }

    /// A fork server failed or died: dropped, and started again by a later spawn unless it
    /// has been too often. One that never got ready is not: the app most likely does not
    /// import, which its workers, started from `argv`, report as usual.
    fn fail(&mut self, key: AppId, reason: String) {
        let Some(mut server) = self.servers.remove(&key) else {
            return;
        };
        server.process.signal(Signal::Kill);
        let lines = output(&mut server.process);
        let app = server.app.clone();
        let was_ready = server.ready;
        drop(server);
        if !was_ready {
            // What it wrote is what the app's first worker reports: not said twice.
            self.given_up.insert(key);
            self.note(
                LogLevel::Debug,
                format!(
                    "{app}: fork server {reason} before it was ready; workers are started \
                     without one"
                ),
            );
            return;
        }
        let restarts = self.restarts.entry(key).or_insert(0);
        *restarts += 1;
        let again = if *restarts > MAX_RESTARTS {
            self.given_up.insert(key);
            "; its workers are started without one from now on"
        } else {
            ""
        };
        self.note(
            LogLevel::Warn,
            format!("{app}: fork server {reason}{again}"),
        );
        self.note_output(key, lines);
    }

    fn note_output(&mut self, key: AppId, lines: Vec<String>) {
        for line in lines {
            self.note(LogLevel::Warn, format!("fork server of {key}: {line}"));
        }
    }
}

/// `python -m cocaine.zygote CODE` for a worker's `python -c ENTRY --socket S CODE` (or
/// `python -m cocaine.worker --socket S CODE`); None for any other command.
fn server_argv(argv: &[String]) -> Option<Vec<String>> {
    let worker = |flag: &str, what: &str| {
        (flag == "-c" && what == PYTHON_WORKER_ENTRY) || (flag == "-m" && what == "cocaine.worker")
    };
    match argv {
        [python, flag, what, .., code] if worker(flag, what) => Some(vec![
            python.clone(),
            "-m".to_owned(),
            "cocaine.zygote".to_owned(),
            code.clone(),
        ]),
        _ => None,
    }
}

/// What the fork server wrote and the pipe holds now (without waiting for the rest).
fn output(process: &mut WorkerProcess) -> Vec<String> {
    let mut lines = Vec::new();
    process.read_output(&mut lines);
    lines
}

enum Refusal {
    Unsafe(String),
    Broken(String),
}

/// Whether the fork server said it is ready, without waiting.
fn check_ready(server: &mut Server) -> Result<bool, Refusal> {
    let mut kind = [0u8; 1];
    match server.control.read(&mut kind) {
        Ok(0) => Err(Refusal::Broken("exited while starting".to_owned())),
        Ok(_) if kind[0] == b'R' => Ok(true),
        Ok(_) if kind[0] == b'U' => {
            server
                .control
                .set_nonblocking(false)
                .map_err(|e| Refusal::Broken(e.to_string()))?;
            let _ = server.control.set_read_timeout(Some(REPLY_TIMEOUT));
            let text =
                read_text(&mut server.control).map_err(|e| Refusal::Broken(e.to_string()))?;
            Err(Refusal::Unsafe(text))
        }
        Ok(_) => Err(Refusal::Broken(format!(
            "said {:?} instead of ready",
            kind[0] as char
        ))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(Refusal::Broken(e.to_string())),
    }
}

fn read_text(control: &mut UnixStream) -> io::Result<String> {
    let mut len = [0u8; 4];
    control.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_REQUEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a reply too long",
        ));
    }
    let mut text = vec![0; len];
    control.read_exact(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Asks for one worker and waits for its pid.
fn request(server: &mut Server, spec: &SpawnSpec) -> io::Result<WorkerProcess> {
    let mut payload = Vec::new();
    let worker = spec.worker.to_string();
    let cwd = spec.cwd.as_deref().map(|p| p.as_os_str().as_bytes());
    let mut fields: Vec<&[u8]> = vec![
        worker.as_bytes(),
        spec.socket.as_os_str().as_bytes(),
        cwd.unwrap_or(b""),
    ];
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    fields.extend(env.iter().map(|e| e.as_bytes()));
    for (i, field) in fields.iter().enumerate() {
        if field.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a NUL byte in the worker's settings",
            ));
        }
        if i > 0 {
            payload.push(0);
        }
        payload.extend_from_slice(field);
    }
    if payload.len() > MAX_REQUEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the worker's settings are too long",
        ));
    }
    let mut message = (payload.len() as u32).to_be_bytes().to_vec();
    message.extend_from_slice(&payload);

    let (reader, writer) = WorkerProcess::output_pipe()?;
    server.control.set_nonblocking(false)?;
    server.control.set_write_timeout(Some(REPLY_TIMEOUT))?;
    server.control.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let sent = send_with_fd(&server.control, &message, writer.as_raw_fd())?;
    // The worker holds the write end now: the pipe ends when it (and whatever it starts) exits.
    drop(writer);
    server.control.write_all(&message[sent..])?;
    let mut kind = [0u8; 1];
    server.control.read_exact(&mut kind)?;
    match kind[0] {
        b'P' => {
            let mut pid = [0u8; 4];
            server.control.read_exact(&mut pid)?;
            let pid = i32::from_be_bytes(pid);
            if pid <= 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a bad pid"));
            }
            WorkerProcess::adopt(pid, reader)
        }
        b'E' => {
            let text = read_text(&mut server.control)?;
            Err(io::Error::other(text))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an unexpected reply {:?}", other as char),
        )),
    }
}

/// sendmsg(2) of `bytes` with `fd` passed alongside; returns how much was sent (at least one
/// byte, which carries the descriptor).
fn send_with_fd(control: &UnixStream, bytes: &[u8], fd: RawFd) -> io::Result<usize> {
    // SAFETY: the message header points at locals that outlive the call; the control buffer
    // is sized by CMSG_SPACE for one descriptor and filled through the CMSG_* accessors.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut control_buf = vec![0u8; space];
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        let mut header: libc::msghdr = std::mem::zeroed();
        header.msg_iov = &mut iov;
        header.msg_iovlen = 1;
        header.msg_control = control_buf.as_mut_ptr() as *mut libc::c_void;
        header.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, fd);
        loop {
            let sent = libc::sendmsg(control.as_raw_fd(), &header, libc::MSG_NOSIGNAL);
            if sent > 0 {
                return Ok(sent as usize);
            }
            let error = io::Error::last_os_error();
            if sent == 0 || error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

/// Reaps children nobody else waits for: with the node a subreaper, whatever a worker started
/// and left behind becomes its child when the worker exits. `known` says which children are
/// reaped elsewhere; one of them still waiting ends the pass (its own reap comes next).
pub fn reap_orphans(known: impl Fn(u32) -> bool) {
    loop {
        // SAFETY: waitid writes into a zeroed local siginfo_t; si_pid is read only after it
        // reported a child.
        let pid = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_ALL, 0, &mut info, flags) != 0 {
                return;
            }
            info.si_pid()
        };
        if pid <= 0 || known(pid as u32) {
            return;
        }
        let mut status = 0;
        // SAFETY: reaps that one child; the status goes to a local.
        unsafe {
            libc::waitpid(pid, &mut status, libc::WNOHANG);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_python_worker_command_has_a_fork_server() {
        let worker: Vec<String> = ["python3", "-m", "cocaine.worker", "--socket", "/s", "/a.py"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            server_argv(&worker).unwrap(),
            ["python3", "-m", "cocaine.zygote", "/a.py"]
        );
        let entry = [
            "python3",
            "-c",
            PYTHON_WORKER_ENTRY,
            "--socket",
            "/s",
            "/a.py",
        ];
        let entry: Vec<String> = entry.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            server_argv(&entry).unwrap(),
            ["python3", "-m", "cocaine.zygote", "/a.py"]
        );
        let other_code: Vec<String> = ["python3", "-c", "print(1)", "/a.py"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(server_argv(&other_code).is_none());
        let other: Vec<String> = ["node", "/w.js", "--socket", "/s", "/a.js"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(server_argv(&other).is_none());
        assert!(server_argv(&[]).is_none());
    }
}
