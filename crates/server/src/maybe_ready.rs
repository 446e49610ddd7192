//! Work that user code finished at once (a plain `fn` method) or that must
//! still be awaited (an `async fn` method, an async stream step), and the
//! two ways to finish it: awaiting it in async code, or blocking on it on
//! a transport's own thread.
//!
//! Sync methods stay on the cheapest path: they run where the request was
//! read and never touch a runtime. Only the async ones pay for a future.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::error::RpcError;

/// A boxed, sendable future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of user code, ready now or after awaiting.
#[must_use = "the work is not finished until it is resolved or waited on"]
pub enum MaybeReady<'a, T> {
    /// The code ran to completion synchronously.
    Ready(T),
    /// The code is async; its future still has to run.
    Pending(BoxFuture<'a, T>),
}

impl<T> std::fmt::Debug for MaybeReady<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MaybeReady::Ready(_) => "MaybeReady::Ready(..)",
            MaybeReady::Pending(_) => "MaybeReady::Pending(..)",
        })
    }
}

impl<'a, T: Send + 'a> MaybeReady<'a, Result<T, RpcError>> {
    /// Awaits the work; a panic in it becomes a [`RpcError`] of kind `panic`.
    pub async fn resolve(self) -> Result<T, RpcError> {
        match self {
            MaybeReady::Ready(value) => value,
            MaybeReady::Pending(future) => CatchPanic(future).await,
        }
    }

    /// Finishes the work on this thread, blocking while a future is
    /// pending; see [`block_on`] for the runtime it runs on.
    pub fn wait(self) -> Result<T, RpcError> {
        match self {
            MaybeReady::Ready(value) => value,
            MaybeReady::Pending(future) => block_on(CatchPanic(future)),
        }
    }
}

/// Polls a future, turning a panic while polling into an error, so an
/// `async fn` method that panics fails its call like a sync one does.
struct CatchPanic<'a, T>(BoxFuture<'a, Result<T, RpcError>>);

impl<T> Future for CatchPanic<'_, T> {
    type Output = Result<T, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
            .unwrap_or_else(|payload| Poll::Ready(Err(RpcError::panicked(payload.as_ref()))))
    }
}

/// Runs `future` to completion from synchronous code.
///
/// - On a thread of a multi-threaded tokio runtime (an HTTP request
///   running in place, or the blocking pool), the thread's other tasks move
///   to another worker while this one waits, and the future runs on that
///   runtime, with its timers, I/O and spawned tasks.
/// - On a current-thread runtime, which cannot lend its only thread, and on
///   threads without a runtime (the pipe's serve loop, a Unix connection
///   thread), the future runs on a small shared runtime started the first
///   time an async method is called.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        // Blocking inside a current-thread runtime would stall everything it
        // drives, the future included; another thread waits instead.
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(|| shared_runtime().block_on(future))
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        }),
        Err(_) => shared_runtime().block_on(future),
    }
}

/// The runtime async work runs on when the calling thread has none.
fn shared_runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vgirpc-async")
            .enable_all()
            .build()
            .expect("the operating system refused the threads of the async runtime")
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sleepy(value: u8) -> MaybeReady<'static, Result<u8, RpcError>> {
        MaybeReady::Pending(Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(value)
        }))
    }

    #[test]
    fn waits_without_a_runtime() {
        assert_eq!(sleepy(1).wait().unwrap(), 1);
        assert_eq!(MaybeReady::Ready(Ok::<u8, RpcError>(2)).wait().unwrap(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_inside_a_multi_threaded_runtime() {
        assert_eq!(sleepy(3).wait().unwrap(), 3);
        let on_pool = tokio::task::spawn_blocking(|| sleepy(4).wait())
            .await
            .unwrap();
        assert_eq!(on_pool.unwrap(), 4);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waits_inside_a_current_thread_runtime() {
        assert_eq!(sleepy(5).wait().unwrap(), 5);
        assert_eq!(sleepy(6).resolve().await.unwrap(), 6);
    }

    #[test]
    fn a_panicking_future_is_an_error() {
        let boom: MaybeReady<'_, Result<u8, RpcError>> =
            MaybeReady::Pending(Box::pin(async { panic!("async boom") }));
        let err = boom.wait().unwrap_err();
        assert_eq!(err.error_kind(), Some("panic"));
        assert!(err.message().contains("async boom"), "{err}");
    }
}
