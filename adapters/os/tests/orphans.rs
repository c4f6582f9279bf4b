//! Orphan reaping (`fork_server::reap_orphans`): with the node a child subreaper, what a
//! worker leaves behind becomes the node's child when the worker exits; the reap pass must
//! reap those and never a child the node waits for itself.
//!
//! One test in its own binary: making the test process a subreaper and reaping "any child"
//! would take the children of tests running beside it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use cocaine_os::fork_server::reap_orphans;

fn make_subreaper() {
    // SAFETY: prctl with integer arguments; no memory is touched.
    let done = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(done, 0, "{}", std::io::Error::last_os_error());
}

/// `waitid` on `pid` for an exit, never reaping it (WNOWAIT), with `flags` added; 0 on
/// success.
fn wait_unreaped(pid: i32, flags: libc::c_int) -> libc::c_int {
    // SAFETY: waitid writes into a zeroed local siginfo_t.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT | flags,
        )
    }
}

/// Blocks until `pid` has exited, leaving it waitable: an event, not a sleep.
fn wait_exited_unreaped(pid: i32) {
    let got = wait_unreaped(pid, 0);
    assert_eq!(got, 0, "{pid}: {}", std::io::Error::last_os_error());
}

/// Whether `pid` is still a child of this process (running or a zombie).
fn is_child(pid: i32) -> bool {
    // WNOHANG returns at once.
    wait_unreaped(pid, libc::WNOHANG) == 0
}

/// Starts `sh -c SCRIPT`, which prints the pid of what it left running and exits; returns
/// that pid once `sh` is reaped (the grandchild is then this process's child).
fn leave_an_orphan(script: &str) -> i32 {
    let mut sh = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(sh.wait().unwrap().success());
    line.trim().parse().unwrap()
}

#[test]
fn orphans_are_reaped_and_known_children_are_left_to_their_owner() {
    make_subreaper();

    // What a worker left behind, exited: reaped by the pass.
    let orphan = leave_an_orphan("sleep 0.1 >/dev/null & echo $!");
    assert!(is_child(orphan), "the orphan was not adopted");
    wait_exited_unreaped(orphan);
    reap_orphans(|_| false);
    assert!(!is_child(orphan), "the exited orphan was not reaped");

    // A child the node waits for itself (a worker) is not reaped, even while exited orphans
    // wait behind it: the pass stops at it, and its owner gets its real status.
    let mut known = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let known_pid = known.id() as i32;
    wait_exited_unreaped(known_pid);
    let later = leave_an_orphan("sleep 0.05 >/dev/null & echo $!");
    wait_exited_unreaped(later);
    reap_orphans(|pid| pid as i32 == known_pid);
    assert!(is_child(known_pid), "a known child was reaped as an orphan");
    assert_eq!(known.wait().unwrap().code(), Some(3));
    // With the known one reaped by its owner, the next pass (the next SIGCHLD) takes the
    // orphan that waited behind it.
    reap_orphans(|_| false);
    assert!(
        !is_child(later),
        "the orphan behind a known child was never reaped"
    );

    // One still running is left alone.
    let running = leave_an_orphan("sleep 30 >/dev/null & echo $!");
    reap_orphans(|_| false);
    assert!(is_child(running));
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(running, libc::SIGKILL) };
    wait_exited_unreaped(running);
    reap_orphans(|_| false);
    assert!(!is_child(running));
}
