//! The runtime object_store's HTTP stack runs on: one per process, started on first use, made
//! anew in a child after `fork` (a forked child has none of its parent's threads).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arrowfeed_traits::{Error, Location, Result};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// The process's runtime and the process it was made in.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// Threads of the runtime: requests are I/O-bound, two drive many connections.
const WORKER_THREADS: usize = 2;

/// A handle on this process's runtime, starting it if needed.
pub(crate) fn handle() -> Result<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    match slot.as_ref() {
        Some((made_in, rt)) if *made_in == pid => return Ok(rt.handle().clone()),
        Some(_) => {
            // Made before a fork: its threads do not exist in this process, and dropping it
            // would wait for them forever. Leak it; the child makes its own.
            if let Some((_, old)) = slot.take() {
                std::mem::forget(old);
            }
        }
        None => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("arrowfeed-object-store")
        .enable_all()
        .build()
        .map_err(|e| Error::io("<object-store runtime>", e))?;
    let handle = rt.handle().clone();
    *slot = Some((pid, Arc::new(rt)));
    Ok(handle)
}

/// Runs `fut` on the runtime and returns a future that resolves to its output from any executor
/// (or none: `futures::executor::block_on` works). Dropping the returned future cancels the
/// work.
pub(crate) fn spawn<T: Send + 'static>(
    location: &str,
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Spawned<T> {
    let location = location.to_string();
    match handle() {
        Ok(h) => Spawned {
            location,
            state: SpawnState::Running(h.spawn(fut)),
        },
        Err(e) => Spawned {
            location,
            state: SpawnState::Failed(Some(e)),
        },
    }
}

/// The output of [`spawn`].
pub(crate) struct Spawned<T> {
    location: String,
    state: SpawnState<T>,
}

enum SpawnState<T> {
    Running(JoinHandle<Result<T>>),
    Failed(Option<Error>),
}

impl<T> Future for Spawned<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            SpawnState::Running(h) => Pin::new(h).poll(cx).map(|r| match r {
                Ok(out) => out,
                Err(e) if e.is_cancelled() => Err(Error::Cancelled),
                Err(e) => Err(Error::external(Location::new(this.location.clone()), e)),
            }),
            SpawnState::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(Error::Cancelled))),
        }
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        if let SpawnState::Running(h) = &self.state {
            h.abort();
        }
    }
}

/// Blocks this thread on `fut`: for the synchronous entry points. Never call it from a task of
/// this crate's runtime (nothing here does).
pub(crate) fn block_on<T>(fut: impl Future<Output = T>) -> T {
    futures::executor::block_on(fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_work_resolves_without_a_runtime_in_the_caller() {
        let got = block_on(spawn("test", async { Ok(7) })).expect("ran");
        assert_eq!(got, 7);
    }

    #[test]
    fn dropping_the_future_cancels_the_task() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let fut = spawn("test", async move {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            let _ = tx.send(());
            Ok(())
        });
        drop(fut);
        // Aborted, the task drops its sender without sending; still running, it would hold
        // it past the timeout.
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "the aborted task must not keep running"
        );
    }
}
