//! Threads for jobs: every job runs on a thread of its own, so jobs overlap when the node's
//! `concurrency` allows; finished threads wait for the next job instead of exiting, because
//! spawning a thread per job would cost more than a small echo job itself.

use std::io;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread;

/// Idle threads kept beyond this many exit, so one burst does not pin threads forever.
const MAX_IDLE: usize = 64;

type Task = Box<dyn FnOnce() + Send + 'static>;

/// A task for one thread, with the sender that reaches that thread again: the thread puts it
/// back on the idle list when the task is done. Being the only sender, it also ends the thread
/// once the pool drops it.
struct Assignment {
    task: Task,
    home: Sender<Assignment>,
}

type IdleList = Mutex<Vec<Sender<Assignment>>>;

/// Hands each task to an idle thread, or to a new one if none is idle.
pub(crate) struct Pool {
    idle: Arc<IdleList>,
}

impl Pool {
    pub fn new() -> Pool {
        Pool {
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Starts `task` on a thread of its own at once.
    ///
    /// # Errors
    ///
    /// If no thread is idle and the OS refuses a new one; `task` is dropped.
    pub fn run(&self, task: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let mut task: Task = Box::new(task);
        loop {
            let home = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(home) = home else { break };
            match home.send(Assignment {
                task,
                home: home.clone(),
            }) {
                Ok(()) => return Ok(()),
                // That thread is gone (it cannot be, short of a bug): try the next one.
                Err(returned) => task = returned.0.task,
            }
        }
        let (home, rx) = channel();
        let idle = Arc::downgrade(&self.idle);
        thread::Builder::new()
            .name("cocaine-job".into())
            .spawn(move || serve(&rx, &idle))?;
        // The receiver lives until the thread ends, and it only ends when its sender is gone.
        let _ = home.send(Assignment {
            task,
            home: home.clone(),
        });
        Ok(())
    }
}

fn serve(rx: &Receiver<Assignment>, idle: &Weak<IdleList>) {
    while let Ok(Assignment { task, home }) = rx.recv() {
        task();
        let Some(idle) = idle.upgrade() else { return };
        let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= MAX_IDLE {
            return;
        }
        idle.push(home);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn tasks_overlap_and_threads_are_reused() {
        let pool = Pool::new();
        let barrier = Arc::new(Barrier::new(3));
        let (done_tx, done_rx) = channel();
        for _ in 0..2 {
            let (barrier, done_tx) = (barrier.clone(), done_tx.clone());
            pool.run(move || {
                // Both tasks must be running at once to pass this barrier with the test.
                barrier.wait();
                done_tx.send(thread::current().id()).unwrap();
            })
            .unwrap();
        }
        barrier.wait();
        let first: Vec<_> = (0..2).map(|_| done_rx.recv().unwrap()).collect();
        // Wait until both threads are back on the idle list.
        while pool.idle.lock().unwrap().len() < 2 {
            thread::yield_now();
        }
        let done_tx2 = done_tx.clone();
        pool.run(move || done_tx2.send(thread::current().id()).unwrap())
            .unwrap();
        assert!(first.contains(&done_rx.recv().unwrap()));
    }
}
