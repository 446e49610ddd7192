//! Synchronous work (method bodies, session locks, zstd of large bodies)
//! run from the async request path without stalling other connections.
//!
//! Handing work to another thread costs a wake-up in each direction, which
//! on a small call is several times the call itself. So a method call runs
//! in place, on the runtime thread that read its request, as long as
//! another runtime thread stays free to drive the other connections: at
//! most `workers - 1` calls run in place at once ([`InPlaceCalls`]). Calls
//! beyond that, and waits that may take long whatever the method (a session
//! lock), go through [`run`]: on a multi-threaded runtime that is
//! [`tokio::task::block_in_place`], which first hands the thread's other
//! tasks to another thread; a current-thread runtime cannot give its tasks
//! away, so there the work goes to the blocking pool.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Handle, RuntimeFlavor};

/// The work panicked; the panic was caught so the connection can answer.
#[derive(Debug)]
pub(crate) struct Panicked;

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request handler panicked")
    }
}

/// Runs `work` to completion off the runtime's worker threads.
pub(crate) async fn run<T, F>(work: F) -> Result<T, Panicked>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if multi_threaded_workers().is_some() {
        tokio::task::block_in_place(|| catch_unwind(AssertUnwindSafe(work)).map_err(|_| Panicked))
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Panicked)
    }
}

/// The number of worker threads, when running on a multi-threaded runtime.
fn multi_threaded_workers() -> Option<usize> {
    let handle = Handle::try_current().ok()?;
    (handle.runtime_flavor() == RuntimeFlavor::MultiThread).then(|| handle.metrics().num_workers())
}

/// How many method calls of one server run in place right now.
#[derive(Debug, Clone, Default)]
pub(crate) struct InPlaceCalls(Arc<AtomicUsize>);

impl InPlaceCalls {
    /// Runs a method call in place when a worker thread would still be
    /// free, through [`run`] otherwise.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, Panicked>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some(workers) = multi_threaded_workers()
            && let Some(_slot) = self.claim(workers.saturating_sub(1))
        {
            return catch_unwind(AssertUnwindSafe(work)).map_err(|_| Panicked);
        }
        run(work).await
    }

    /// A place among at most `limit` concurrent in-place calls.
    fn claim(&self, limit: usize) -> Option<Slot<'_>> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < limit).then_some(running + 1)
            })
            .ok()
            .map(|_| Slot(&self.0))
    }
}

/// One claimed place; given back when dropped, also after a panic.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_threaded_runtimes_run_work_and_catch_panics() {
        assert_eq!(run(|| 6 * 7).await.unwrap(), 42);
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
        let calls = InPlaceCalls::default();
        assert_eq!(calls.run(|| 7).await.unwrap(), 7);
        assert!(calls.run(|| -> u8 { panic!("boom") }).await.is_err());
        // The panicking call gave its place back.
        assert_eq!(calls.0.load(Ordering::Acquire), 0);
        // The runtime keeps serving other tasks after a caught panic.
        assert_eq!(tokio::spawn(async { 1 }).await.unwrap(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn current_thread_runtimes_use_the_blocking_pool() {
        assert_eq!(run(|| "done").await.unwrap(), "done");
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
        let calls = InPlaceCalls::default();
        assert_eq!(calls.run(|| "pool").await.unwrap(), "pool");
    }

    #[test]
    fn places_are_limited_and_given_back() {
        let calls = InPlaceCalls::default();
        let first = calls.claim(2).expect("room for two");
        let second = calls.claim(2).expect("room for two");
        assert!(calls.claim(2).is_none());
        drop(first);
        assert!(calls.claim(2).is_some());
        drop(second);
        assert!(
            calls.claim(0).is_none(),
            "a single worker never runs calls in place"
        );
    }
}
