//! Worker processes: spawned with fork and exec in a process group of their own (or forked by
//! a fork server and adopted, see [`crate::fork_server`]), stdout and stderr captured through
//! one pipe, signalled as a group, reaped without blocking.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cocaine_core::node::SpawnSpec;
use cocaine_core::process::{ExitStatus, Signal};

use crate::lines::LineSplitter;

/// A running worker process.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Handle,
    output: Option<io::PipeReader>,
    /// The output reached end of file (the pipe stays open until [`WorkerProcess::close_output`],
    /// so a runtime can stop watching it first).
    output_eof: bool,
    lines: LineSplitter,
}

impl WorkerProcess {
    /// Starts `spec.argv` with `spec.env` added to the node's environment, in `spec.cwd`.
    pub fn spawn(spec: &SpawnSpec) -> io::Result<Self> {
        Self::start(&spec.argv, &spec.env, spec.cwd.as_deref(), Stdio::null())
    }

    /// Starts `argv` as [`WorkerProcess::spawn`] does, with `stdin` as its standard input.
    pub(crate) fn start(
        argv: &[String],
        env: &[(String, String)],
        cwd: Option<&Path>,
        stdin: Stdio,
    ) -> io::Result<Self> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
        let (reader, writer) = io::pipe()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(writer.try_clone()?)
            .stderr(writer)
            // Its own group, so a signal reaches whatever the worker started too, and a
            // Ctrl-C at the node's terminal reaches only the node, which then stops workers
            // in order.
            .process_group(0);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let child = command
            .spawn()
            .map_err(|e| name_what_is_missing(e, program, cwd))?;
        // The command (holding the pipe's write ends) is dropped here, so the pipe reaches
        // EOF when the worker and its children are gone.
        drop(command);
        set_nonblocking(reader.as_raw_fd())?;
        Ok(Self::new(Handle::Child(child), reader))
    }

    /// A worker some other process forked that is now this process's child (a fork server's
    /// worker, reparented to the node as its subreaper), writing to `output`.
    pub(crate) fn adopt(pid: libc::pid_t, output: io::PipeReader) -> io::Result<Self> {
        set_nonblocking(output.as_raw_fd())?;
        Ok(Self::new(Handle::Adopted { pid, reaped: None }, output))
    }

    fn new(child: Handle, output: io::PipeReader) -> Self {
        Self {
            child,
            output: Some(output),
            output_eof: false,
            lines: LineSplitter::default(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The output pipe's read end, for a process that hands its write end on.
    pub(crate) fn output_pipe() -> io::Result<(io::PipeReader, OwnedFd)> {
        let (reader, writer) = io::pipe()?;
        Ok((reader, writer.into()))
    }

    /// The descriptor of the worker's output, while it is open.
    pub fn output_fd(&self) -> Option<RawFd> {
        self.output.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Reads what the worker wrote, as complete lines. Returns true at end of file; the
    /// pipe then stays open until [`WorkerProcess::close_output`].
    pub fn read_output(&mut self, out: &mut Vec<String>) -> bool {
        if self.output_eof {
            return true;
        }
        let Some(reader) = self.output.as_mut() else {
            return true;
        };
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.lines.push(&buf[..n], out),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.lines.finish(out);
        self.output_eof = true;
        true
    }

    /// Closes the output pipe (after its descriptor is no longer watched).
    pub fn close_output(&mut self) {
        self.output = None;
    }

    /// Sends a signal to the worker's whole process group.
    pub fn signal(&self, signal: Signal) {
        let sig = match signal {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }

    /// The worker's exit status, if it has exited (reaping it, so no zombie remains).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
}

impl Drop for WorkerProcess {
    /// A worker must never outlive its handle: kill and reap it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(Signal::Kill);
            self.child.wait();
        }
    }
}

/// A process started here, or adopted (waited for by pid, as std's `Child` cannot be made
/// from one).
#[derive(Debug)]
enum Handle {
    Child(Child),
    Adopted {
        pid: libc::pid_t,
        reaped: Option<ExitStatus>,
    },
}

impl Handle {
    fn id(&self) -> u32 {
        match self {
            Handle::Child(child) => child.id(),
            Handle::Adopted { pid, .. } => *pid as u32,
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Handle::Child(child) => Ok(child.try_wait()?.map(convert)),
            Handle::Adopted { pid, reaped } => {
                if reaped.is_none() {
                    *reaped = waitpid(*pid, libc::WNOHANG)?;
                }
                Ok(*reaped)
            }
        }
    }

    fn wait(&mut self) {
        match self {
            Handle::Child(child) => {
                let _ = child.wait();
            }
            Handle::Adopted { pid, reaped } => {
                if reaped.is_none() {
                    *reaped = waitpid(*pid, 0).ok().flatten();
                }
            }
        }
    }
}

/// waitpid(2) for one child: its status once it has exited, None while it runs (`WNOHANG`).
fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status into a local.
        let got = unsafe { libc::waitpid(pid, &mut status, flags) };
        if got == pid {
            return Ok(Some(decode_status(status)));
        }
        if got == 0 {
            return Ok(None);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

pub(crate) fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFEXITED(status) {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(-1)
    }
}

fn convert(status: std::process::ExitStatus) -> ExitStatus {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(sig)) => ExitStatus::Signal(sig),
        (None, None) => ExitStatus::Code(-1),
    }
}

/// exec's "No such file or directory" says neither which file nor that it may be the working
/// folder (an app's code folder that is not there): say which.
fn name_what_is_missing(error: io::Error, program: &str, cwd: Option<&Path>) -> io::Error {
    if error.kind() != io::ErrorKind::NotFound {
        return error;
    }
    let what = match cwd {
        Some(cwd) if !cwd.is_dir() => {
            format!("its working folder {} does not exist", cwd.display())
        }
        _ if program.contains('/') => format!("{program} does not exist"),
        _ => format!("{program} is not on PATH"),
    };
    io::Error::new(io::ErrorKind::NotFound, what)
}

pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with flags we read first.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocaine_core::engine::Backend;
    use cocaine_core::WorkerId;

    fn spec(argv: &[&str]) -> SpawnSpec {
        SpawnSpec {
            worker: WorkerId(1),
            app: "test".into(),
            backend: Backend::Process,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("COCAINE_TEST".into(), "yes".into())],
            cwd: Some(std::env::temp_dir()),
            socket: "/tmp/unused.sock".into(),
            fork: false,
        }
    }

    fn wait(p: &mut WorkerProcess) -> ExitStatus {
        loop {
            if let Some(status) = p.try_wait().unwrap() {
                return status;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn output_and_status_are_captured() {
        let mut p = WorkerProcess::spawn(&spec(&[
            "sh",
            "-c",
            "echo out; echo \"err $COCAINE_TEST\" >&2; exit 3",
        ]))
        .unwrap();
        assert_eq!(wait(&mut p), ExitStatus::Code(3));
        let mut lines = Vec::new();
        while !p.read_output(&mut lines) {}
        assert_eq!(lines, vec!["out", "err yes"]);
    }

    #[test]
    fn signals_reach_the_group() {
        let mut p = WorkerProcess::spawn(&spec(&["sh", "-c", "sleep 30 & wait"])).unwrap();
        p.signal(Signal::Kill);
        assert_eq!(wait(&mut p), ExitStatus::Signal(libc::SIGKILL));
        // The grandchild got it too, so the pipe reaches EOF.
        let mut lines = Vec::new();
        while !p.read_output(&mut lines) {}
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let err = WorkerProcess::spawn(&spec(&["/nonexistent/worker"])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "/nonexistent/worker does not exist");
        let err = WorkerProcess::spawn(&spec(&["no-such-program-xyz"])).unwrap_err();
        assert_eq!(err.to_string(), "no-such-program-xyz is not on PATH");
    }

    #[test]
    fn a_missing_working_folder_is_named() {
        let mut missing = spec(&["sh", "-c", "true"]);
        missing.cwd = Some("/path/to/application".into());
        let err = WorkerProcess::spawn(&missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            "its working folder /path/to/application does not exist"
        );
    }
}
