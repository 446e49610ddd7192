//! Synchronous work (method bodies, session locks, zstd of large bodies)
//! run from the async request path without stalling other connections.
//!
//! On a multi-threaded runtime the work runs on the calling thread inside
//! [`tokio::task::block_in_place`], which hands the thread's other tasks to
//! another worker first. Compared with `spawn_blocking` this saves a thread
//! hand-off and a wake-up in each direction, which is most of the CPU a
//! small call costs. A current-thread runtime cannot give its tasks away,
//! so there the work goes to the blocking pool.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::runtime::{Handle, RuntimeFlavor};

/// The work panicked; the panic was caught so the connection can answer.
#[derive(Debug)]
pub(crate) struct Panicked;

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request handler panicked")
    }
}

/// Runs `work` to completion without blocking the reactor.
pub(crate) async fn run<T, F>(work: F) -> Result<T, Panicked>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let multi_threaded = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(|| catch_unwind(AssertUnwindSafe(work)).map_err(|_| Panicked))
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_threaded_runtimes_run_work_and_catch_panics() {
        assert_eq!(run(|| 6 * 7).await.unwrap(), 42);
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
        // The runtime keeps serving other tasks after a caught panic.
        assert_eq!(tokio::spawn(async { 1 }).await.unwrap(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn current_thread_runtimes_use_the_blocking_pool() {
        assert_eq!(run(|| "done").await.unwrap(), "done");
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
    }
}
