//! A check every runtime runs on its real loop (each includes this file with `#[path]`):
//! an input pushed to the inbox from another thread while the node sleeps with nothing to do
//! (no app, no timer) is taken at once.

use std::sync::mpsc;
use std::time::Duration;

use cocaine_core::node::{AppOrigin, Input, Node, NodeConfig, Output};
use cocaine_os::host::{Reaction, Setup};
use cocaine_os::inbox::Inbox;

/// A runtime's `run`, with its error as text.
pub type Run = fn(Node, Setup, &mut dyn FnMut(&Output) -> Reaction) -> Result<(), String>;

/// Runs the check on `run`; panics when it fails.
pub fn an_input_pushed_from_another_thread_wakes_the_sleeping_loop(run: Run) {
    let inbox = Inbox::new().unwrap();
    let store = tempfile::tempdir().unwrap();
    let setup = Setup {
        // Removing an unknown app makes the node say something: the sign that the loop runs.
        first: vec![Input::Remove {
            app: "nothing".into(),
            origin: AppOrigin::CommandLine,
        }],
        store: Some(cocaine_store::Store::open(store.path()).unwrap()),
        inbox: inbox.clone(),
    };
    let (running_tx, running) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let node = std::thread::spawn(move || {
        let mut stopped = false;
        let mut observe = |output: &Output| {
            if matches!(output, Output::Stopped) {
                stopped = true;
            }
            let _ = running_tx.send(());
            Reaction::Continue
        };
        let result = run(Node::new(NodeConfig::default()), setup, &mut observe);
        let _ = done_tx.send((result, stopped));
    });
    running
        .recv_timeout(Duration::from_secs(10))
        .expect("the node said nothing");
    // The node has nothing to wait for but the inbox (no timer, no endpoint).
    inbox.push(Input::Shutdown);
    let (result, stopped) = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the loop did not wake for the inbox");
    result.unwrap();
    assert!(stopped, "the node did not report Stopped");
    node.join().unwrap();
}
