//! Helpers shared by the test modules.

use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`: how the
/// tests check that nothing deadlocks.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        // The receiver may be gone after a timeout; nothing to do then.
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            handle.join().expect("the test thread finished");
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not finish within {limit:?}: deadlock?")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The thread panicked: surface its panic.
            match handle.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => unreachable!("sent nothing but finished"),
            }
        }
    }
}
