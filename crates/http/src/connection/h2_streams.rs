//! HTTP/2 streams run in their connection's task (see [`StreamExecutor`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

/// A stream future of an HTTP/2 connection.
type StreamTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the stream futures hyper hands over for an HTTP/2 connection in
/// the connection's own task rather than as tasks of their own. A spawned
/// stream that answers wakes the connection task, usually on the other
/// worker thread (a `mio` waker write, a futex wake-up), once per request;
/// polled here, the answer is written in the same poll that produced it.
/// HTTP/1.1 serves its request inside the connection future and never
/// comes here.
///
/// The price is that one stream's poll holds up the connection's other
/// streams while it runs, and that the calls of one HTTP/2 connection
/// run one at a time, on one thread, as an HTTP/1.1 connection's do.
/// Method calls are short or go through `block_in_place` (which moves the
/// thread's other tasks, not this one), so a poll that takes longer than
/// [`SLOW_STREAM_POLL`] makes the connection hand every stream it still
/// holds, and every later one, to a task of its own: a slow method holds
/// up the connection's other streams once, not once per stream.
#[derive(Clone)]
pub(super) struct StreamExecutor(Arc<Streams>);

struct Streams {
    /// Handed over by hyper, not yet polled.
    new: Mutex<Vec<StreamTask>>,
    /// A stream's poll was slow: streams get tasks of their own.
    spawn: AtomicBool,
}

/// A stream poll this long sends the connection's streams to tasks of
/// their own.
const SLOW_STREAM_POLL: Duration = Duration::from_millis(5);

/// Times the connection and the streams it started are polled in one go
/// before the task yields to the worker thread's other tasks. With 64
/// streams of small calls, 1 and 2 served about as many requests per
/// second and 4 somewhat fewer (within the noise of the measurement).
const DRIVE_ROUNDS: usize = 2;

impl StreamExecutor {
    /// An executor for one connection; with `spawn`, every stream gets a
    /// task of its own from the start.
    pub(super) fn new(spawn: bool) -> Self {
        Self(Arc::new(Streams {
            new: Mutex::new(Vec::new()),
            spawn: AtomicBool::new(spawn),
        }))
    }

    fn take_new(&self, running: &mut FuturesUnordered<Timed>) -> bool {
        let mut new = self.0.new.lock().unwrap_or_else(PoisonError::into_inner);
        let any = !new.is_empty();
        running.extend(new.drain(..).map(|task| Timed {
            task: Some(task),
            streams: self.0.clone(),
        }));
        any
    }

    /// Polls the streams, then the connection, and streams it started in
    /// that poll at once, so their answers go out with the next poll of
    /// the connection; [`Driven::Ended`] when the connection has ended.
    /// Streams still running then are dropped: their connection is gone.
    pub(super) fn drive<C, T>(
        &self,
        mut connection: Pin<&mut C>,
        running: &mut FuturesUnordered<Timed>,
        cx: &mut Context<'_>,
    ) -> Driven<T>
    where
        C: Future<Output = T>,
    {
        for _ in 0..DRIVE_ROUNDS {
            self.take_new(running);
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
            if self.0.spawn.load(Ordering::Relaxed) {
                // Streams waiting for a wake-up are not polled again here
                // until it comes, so they are handed over now.
                for mut stream in std::mem::take(running) {
                    stream.hand_off();
                }
            }
            if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
                return Driven::Ended(ended);
            }
            if !self.take_new(running) {
                return Driven::Waiting;
            }
        }
        Driven::Yielded
    }
}

/// Where a connection's poll left it.
pub(super) enum Driven<T> {
    /// The connection ended with this.
    Ended(T),
    /// Waiting for a wake-up.
    Waiting,
    /// Still has work, but gives the thread's other tasks their turn: the
    /// task is to be woken at once.
    Yielded,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        if self.0.spawn.load(Ordering::Relaxed) {
            tokio::spawn(stream);
        } else {
            self.0
                .new
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Box::pin(stream));
        }
    }
}

/// A stream future run in the connection's task: it reports a slow poll,
/// and once one has been slow it moves to a task of its own (ending here).
pub(super) struct Timed {
    /// Taken when the stream moves to a task of its own.
    task: Option<StreamTask>,
    streams: Arc<Streams>,
}

impl Timed {
    /// Moves the stream to a task of its own.
    fn hand_off(&mut self) {
        if let Some(task) = self.task.take() {
            tokio::spawn(task);
        }
    }
}

impl Future for Timed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.streams.spawn.load(Ordering::Relaxed) {
            this.hand_off();
            return Poll::Ready(());
        }
        let Some(task) = this.task.as_mut() else {
            return Poll::Ready(());
        };
        let started = std::time::Instant::now();
        let polled = task.as_mut().poll(cx);
        if started.elapsed() >= SLOW_STREAM_POLL {
            this.streams.spawn.store(true, Ordering::Relaxed);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use hyper::rt::Executor;

    use super::*;

    /// Polls the streams of `streams` once, beside a connection that never
    /// ends.
    async fn drive_once(streams: &StreamExecutor, running: &mut FuturesUnordered<Timed>) {
        let mut connection = std::pin::pin!(std::future::pending::<()>());
        poll_fn(|cx| {
            let _ = streams.drive(connection.as_mut(), running, cx);
            Poll::Ready(())
        })
        .await;
    }

    #[tokio::test]
    async fn streams_run_in_the_connection_task_until_one_is_slow() {
        let streams = StreamExecutor::new(false);
        let mut running = FuturesUnordered::new();
        let (sent, mut received) = tokio::sync::mpsc::unbounded_channel();

        let quick = sent.clone();
        streams.execute(async move {
            let _ = quick.send("quick");
        });
        assert!(received.try_recv().is_err(), "polled before the connection");
        drive_once(&streams, &mut running).await;
        assert_eq!(received.try_recv().ok(), Some("quick"));

        let slow = sent.clone();
        streams.execute(async move {
            std::thread::sleep(SLOW_STREAM_POLL);
            let _ = slow.send("slow");
        });
        drive_once(&streams, &mut running).await;
        assert_eq!(received.try_recv().ok(), Some("slow"));

        // Runs without the connection being polled again.
        streams.execute(async move {
            let _ = sent.send("spawned");
        });
        assert_eq!(received.recv().await, Some("spawned"));
        assert!(running.is_empty());
    }

    #[tokio::test]
    async fn a_slow_stream_sends_the_streams_already_held_to_tasks_of_their_own() {
        let streams = StreamExecutor::new(false);
        let mut running = FuturesUnordered::new();
        let (sent, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();

        let waiting = sent.clone();
        streams.execute(async move {
            let _ = released.await;
            let _ = waiting.send("waited");
        });
        streams.execute(async move {
            std::thread::sleep(SLOW_STREAM_POLL);
            let _ = sent.send("slow");
        });
        // The waiting stream is pending when the slow one is polled, and
        // is handed to a task of its own at once.
        drive_once(&streams, &mut running).await;
        assert_eq!(received.try_recv().ok(), Some("slow"));
        assert!(running.is_empty(), "no stream is left in the connection");

        release.send(()).unwrap();
        assert_eq!(received.recv().await, Some("waited"));
    }

    #[tokio::test]
    async fn asked_to_every_stream_gets_a_task_of_its_own() {
        let streams = StreamExecutor::new(true);
        let (sent, mut received) = tokio::sync::mpsc::unbounded_channel();
        streams.execute(async move {
            let _ = sent.send("spawned");
        });
        // Never driven by a connection.
        assert_eq!(received.recv().await, Some("spawned"));
    }
}
