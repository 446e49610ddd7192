//! Polls a connection again at once when it wakes itself while being
//! polled, instead of letting the runtime reschedule its task.
//!
//! hyper wakes the connection from inside its own poll on every HTTP/1.1
//! request with a body: the service, run in the connection's poll, reads
//! the request body, and the body's channel tells the connection (the same
//! task) that it wants the data. Tokio treats a task woken while it runs as
//! a yield: it goes to the back of the run queue and a parked worker thread
//! is woken to steal it. On one keep-alive connection that is a futex
//! wake-up, a thread waking and going back to sleep, and often the
//! connection moving to the other thread, for every request. Polled again
//! here, the request is served in the poll that read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

use super::h2_streams::Driven;

/// Polls in a row before the connection yields to the thread's other
/// tasks as a woken task would.
const REPOLLS: usize = 16;

/// Not being polled: a wake goes to the task.
const IDLE: u8 = 0;
/// Being polled: a wake asks for one more poll.
const POLLING: u8 = 1;
/// Being polled and woken meanwhile.
const WOKEN: u8 = 2;

/// The waker a connection is polled with, and what it signals.
pub(super) struct SelfWake {
    signal: Arc<Signal>,
    waker: Waker,
}

/// Whether a poll is under way and was woken, and the task to wake
/// otherwise.
struct Signal {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire)
        {
            // The poll under way sees it when it ends and polls again.
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

impl SelfWake {
    pub(super) fn new() -> Self {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(signal.clone());
        Self { signal, waker }
    }

    /// Polls `poll` with this waker until it is ready or was not woken
    /// during its poll, at most [`REPOLLS`] times; after that the task
    /// wakes itself to let the thread's other tasks run.
    pub(super) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.signal.task.register(cx.waker());
        let mut inner = Context::from_waker(&self.waker);
        for _ in 0..REPOLLS {
            self.signal.state.store(POLLING, Ordering::Release);
            let polled = poll(&mut inner);
            // A wake before this swap is seen here; one after it finds the
            // state idle and wakes the task.
            let state = self.signal.state.swap(IDLE, Ordering::AcqRel);
            if polled.is_ready() || state != WOKEN {
                return polled;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// [`poll`](Self::poll) for a connection driven by `drive`: ready when
    /// the connection ends. A connection that yielded has the task woken
    /// once the poll is over, since a wake through this waker would only
    /// poll it again in place.
    pub(super) fn drive<T>(
        &self,
        cx: &mut Context<'_>,
        mut drive: impl FnMut(&mut Context<'_>) -> Driven<T>,
    ) -> Poll<T> {
        let mut yielded = false;
        let polled = self.poll(cx, |inner| match drive(inner) {
            Driven::Ended(ended) => Poll::Ready(ended),
            Driven::Waiting => Poll::Pending,
            Driven::Yielded => {
                yielded = true;
                Poll::Pending
            }
        });
        if yielded {
            cx.waker().wake_by_ref();
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::future::{Future, poll_fn};
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_wake_during_the_poll_polls_again_at_once() {
        let self_wake = SelfWake::new();
        let mut polls = 0;
        let done = poll_fn(|cx| {
            self_wake.poll(cx, |inner| {
                polls += 1;
                if polls < 3 {
                    inner.waker().wake_by_ref();
                    Poll::Pending
                } else {
                    Poll::Ready(polls)
                }
            })
        })
        .await;
        assert_eq!(done, 3);
    }

    #[tokio::test]
    async fn a_later_wake_reaches_the_task() {
        let (sender, mut receiver) = tokio::sync::oneshot::channel::<u8>();
        let waiting = tokio::spawn(async move {
            let self_wake = SelfWake::new();
            poll_fn(|cx| self_wake.poll(cx, |inner| Pin::new(&mut receiver).poll(inner))).await
        });
        tokio::task::yield_now().await;
        sender.send(7).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn a_task_that_always_wakes_itself_still_yields() {
        let self_wake = SelfWake::new();
        let mut polls = 0;
        let first = poll_fn(|cx| {
            Poll::Ready(self_wake.poll(cx, |inner| {
                polls += 1;
                inner.waker().wake_by_ref();
                Poll::<()>::Pending
            }))
        })
        .await;
        assert!(first.is_pending());
        assert_eq!(polls, REPOLLS);
    }

    struct CountedWakes(AtomicUsize);

    impl Wake for CountedWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn only_a_yielded_drive_wakes_the_task() {
        let wakes = Arc::new(CountedWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let self_wake = SelfWake::new();
        let woken = || wakes.0.load(Ordering::Relaxed);

        assert!(
            self_wake
                .drive(&mut cx, |_| Driven::<()>::Yielded)
                .is_pending()
        );
        assert_eq!(woken(), 1);
        assert!(
            self_wake
                .drive(&mut cx, |_| Driven::<()>::Waiting)
                .is_pending()
        );
        assert_eq!(woken(), 1);
        assert_eq!(
            self_wake.drive(&mut cx, |_| Driven::Ended(7)),
            Poll::Ready(7)
        );
        assert_eq!(woken(), 1);
    }
}
