//! CPU time of a node and of its workers, from /proc (Linux).
//!
//! A process's `utime + stime` in `/proc/PID/stat` include the threads that have already
//! exited, so a worker that starts a thread per job is charged for all of them. Workers are
//! the node's descendants (a worker started through a wrapper is a grandchild).

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

/// CPU used so far by a node and by each of its descendants.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    node: Duration,
    workers: HashMap<u32, Duration>,
}

/// CPU used between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Used {
    pub node: Duration,
    pub workers: Duration,
    /// Workers seen at the end of the window.
    pub worker_count: usize,
}

impl Sample {
    /// The CPU of `node` and its descendants now; None if the node is gone.
    pub fn take(node: u32) -> Option<Self> {
        let processes = processes();
        let node_cpu = processes.get(&node)?.cpu;
        let mut workers = HashMap::new();
        let mut parents = vec![node];
        while let Some(parent) = parents.pop() {
            for (&pid, p) in &processes {
                if p.ppid == parent && !workers.contains_key(&pid) {
                    workers.insert(pid, p.cpu);
                    parents.push(pid);
                }
            }
        }
        Some(Self {
            node: node_cpu,
            workers,
        })
    }

    /// What was used from `self` to `later`. A worker started in between counts from zero;
    /// one that exited in between is not counted.
    pub fn until(&self, later: &Sample) -> Used {
        let workers = later
            .workers
            .iter()
            .map(|(pid, &cpu)| {
                cpu.saturating_sub(self.workers.get(pid).copied().unwrap_or_default())
            })
            .sum();
        Used {
            node: later.node.saturating_sub(self.node),
            workers,
            worker_count: later.workers.len(),
        }
    }
}

struct Process {
    ppid: u32,
    cpu: Duration,
}

fn processes() -> HashMap<u32, Process> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// `ppid` and `utime + stime` from /proc/PID/stat. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its closing parenthesis.
fn read_stat(pid: u32) -> Option<Process> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Process> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), ... utime (14), stime (15).
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Process {
        ppid,
        cpu: ticks_to_duration(ticks),
    })
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// The pid of the process listening on the TCP port of `endpoint` (`tcp://host:port`), found
/// through the socket's inode in /proc/net/tcp{,6} and the processes' open files.
pub fn listener_pid(endpoint: &str) -> Option<u32> {
    let port = endpoint.rsplit_once(':')?.1.parse::<u16>().ok()?;
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .any(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
            .then_some(pid)
    })
}

/// The inodes of sockets listening (state 0A) on `port` in a /proc/net/tcp table.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    let suffix = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(3) == Some(&"0A");
            (listening && fields.get(1)?.ends_with(&suffix))
                .then(|| fields.get(9).map(|s| s.to_string()))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let line = "42 (a (weird) name) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let p = parse_stat(line).unwrap();
        assert_eq!(p.ppid, 7);
        assert_eq!(p.cpu, ticks_to_duration(300));
        assert!(parse_stat("42 (cut").is_none());
        assert!(parse_stat("").is_none());
    }

    #[test]
    fn listening_sockets_are_found_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1\n\
           1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 5678 1\n";
        assert_eq!(listening_inodes(table, 8080), vec!["1234".to_owned()]);
        assert!(listening_inodes(table, 8081).is_empty());
    }

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        let sample = Sample::take(me).expect("our own stat");
        assert!(sample.until(&sample).node.is_zero());
        assert!(Sample::take(u32::MAX).is_none());
    }
}
