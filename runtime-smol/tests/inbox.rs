//! The inbox wakes this runtime's real loop (the check is shared by every runtime).

#[path = "../../adapters/os/tests/runtime/inbox_wakes.rs"]
mod inbox_wakes;

#[test]
fn an_input_pushed_from_another_thread_wakes_the_sleeping_loop() {
    inbox_wakes::an_input_pushed_from_another_thread_wakes_the_sleeping_loop(
        |node, setup, observe| cocaine_smol::run(node, setup, observe).map_err(|e| e.to_string()),
    );
}
