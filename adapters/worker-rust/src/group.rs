//! The threads that serve the channel, as leader and followers.
//!
//! One thread (the leader) reads from the node. When a job is ready it hands the session to
//! the next waiting thread and runs the job itself, so the handler starts on the thread that
//! read the request, without waking another one first: waking an idle thread costs tens of
//! microseconds on a loaded machine, more than a small echo job. The next leader wakes in
//! parallel and keeps reading, so cancels, heartbeats and overlapping jobs are still seen
//! while jobs run. There is always a thread free to lead: one is started whenever all the
//! others run jobs, and idle ones beyond [`MAX_IDLE`] exit.
//!
//! In inline mode ([`Worker::inline`](crate::Worker::inline)) the leader runs plain jobs
//! itself, still holding the session, and reads on when they return: no hand-off, no thread
//! wake. Their replies are held and written in one go before the next blocking read.
//! Streaming jobs are handed off as above.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::error::WorkerError;
use crate::handler::Lifecycle;
use crate::output::{Flush, Output};
use crate::session::{Session, Step};

/// Threads kept that neither lead nor run a job; more exit after their job.
const MAX_IDLE: usize = 16;

/// The session and the bookkeeping that goes with it, behind one lock: whoever holds it leads.
struct Seat {
    session: Session,
    /// Threads alive in the group.
    threads: usize,
    /// Where the outcome goes; taken by the thread that ends the session.
    ended: Option<SyncSender<Result<(), WorkerError>>>,
}

struct Group {
    seat: Mutex<Seat>,
    /// Threads running a job (neither leading nor waiting to lead).
    running: AtomicUsize,
    output: Arc<Output>,
    life: Arc<Lifecycle>,
    /// Run plain jobs on the leader, without handing the session on.
    inline: bool,
}

impl Group {
    fn seat(&self) -> MutexGuard<'_, Seat> {
        // Handlers run outside the lock and their panics are caught, so a poisoned lock could
        // only come from a bug of ours; the session stays consistent between messages.
        self.seat.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts serving `session`; the receiver yields the outcome once it ends. Jobs still running
/// then finish on their threads, which exit afterwards.
pub(crate) fn start(
    session: Session,
    output: Arc<Output>,
    life: Arc<Lifecycle>,
    inline: bool,
) -> io::Result<Receiver<Result<(), WorkerError>>> {
    let (tx, rx) = sync_channel(1);
    let group = Arc::new(Group {
        seat: Mutex::new(Seat {
            session,
            threads: 1,
            ended: Some(tx),
        }),
        running: AtomicUsize::new(0),
        output,
        life,
        inline,
    });
    spawn(&group)?;
    Ok(rx)
}

fn spawn(group: &Arc<Group>) -> io::Result<()> {
    let group = group.clone();
    thread::Builder::new()
        .name("cocaine-worker".into())
        .spawn(move || serve(&group))
        .map(drop)
}

fn serve(group: &Arc<Group>) {
    let mut after_job = false;
    loop {
        let job = {
            let mut seat = group.seat();
            let idle = seat
                .threads
                .saturating_sub(group.running.load(Ordering::SeqCst));
            if seat.ended.is_none() || (after_job && idle > MAX_IDLE) {
                seat.threads -= 1;
                return;
            }
            let step = loop {
                match seat.session.lead() {
                    // Runs under the lock: a panic is caught inside, so it cannot poison it.
                    Step::Run(job) if group.inline && job.is_plain() => {
                        job.run(&group.output, &group.life, Flush::Later);
                    }
                    step => break step,
                }
            };
            match step {
                Step::Run(job) => {
                    let running = group.running.fetch_add(1, Ordering::SeqCst) + 1;
                    if running >= seat.threads {
                        match spawn(group) {
                            Ok(()) => seat.threads += 1,
                            // The job still runs; reading resumes when it is done.
                            Err(err) => seat.session.log(format_args!(
                                "cannot start a thread to read while a job runs: {err}"
                            )),
                        }
                    }
                    job
                }
                Step::Ended(result) => {
                    seat.threads -= 1;
                    if let Some(ended) = seat.ended.take() {
                        let _ = ended.send(result);
                    }
                    return;
                }
            }
        };
        job.run(&group.output, &group.life, Flush::Now);
        group.running.fetch_sub(1, Ordering::SeqCst);
        after_job = true;
    }
}
