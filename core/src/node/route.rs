//! Where a job's reply goes.

/// A job's reply address: the task (its index in the version whose engine runs the job) and
/// the token its driver submitted it with. The node takes a reply to that task's driver, which
/// alone knows what the token stands for (a client, a connection's request, a publication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub task: usize,
    pub token: u64,
}
