//! Serving until SIGTERM or SIGINT, draining sticky sessions gracefully.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{HttpError, HttpServer};

/// The reference's grace period between the first signal and exit.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(30);

/// SIGTERM and SIGINT, caught from the moment this is built.
///
/// Install it before announcing the server (a ready line, a health check
/// turning green), so a signal that follows the announcement at once is
/// caught instead of killing the process. Needs a tokio runtime.
#[derive(Debug)]
pub struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    /// Starts catching SIGTERM and SIGINT.
    pub fn install() -> Result<Self, HttpError> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// How [`HttpServer::serve_until_signalled`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// After one signal: at once without sticky sessions, else once the
    /// grace period was over and the remaining sessions were closed.
    Graceful,
    /// A second signal cut the grace period short; sessions were left
    /// unclosed, as after a crash.
    Forced,
}

impl HttpServer {
    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    ///
    /// Without sticky sessions it stops at the first signal. With them it
    /// drains: new sessions are refused with `ServerDrainingError` while
    /// existing ones are served for `grace` more; then every remaining
    /// session is closed and serving stops. A second signal during the
    /// grace period stops serving at once.
    ///
    /// Requests in flight when it returns run on in the runtime's tasks;
    /// shutting the runtime down ends them.
    pub async fn serve_until_signalled(
        self,
        listener: TcpListener,
        mut signals: ShutdownSignals,
        grace: Duration,
    ) -> Result<Stopped, HttpError> {
        let drain = self.drain_handle();
        let stop = async move {
            let first = signals.next().await;
            let Some(drain) = drain else {
                tracing::info!(signal = first, "stopping");
                return Stopped::Graceful;
            };
            drain.drain();
            tracing::info!(
                signal = first,
                grace_secs = grace.as_secs_f64(),
                "draining: refusing new sessions, serving existing ones until the grace period ends"
            );
            tokio::select! {
                () = tokio::time::sleep(grace) => {
                    // Close hooks may block; keep them off the reactor.
                    let closed = tokio::task::spawn_blocking(move || drain.shutdown())
                        .await
                        .unwrap_or_default();
                    tracing::info!(closed, "grace period over; closed the remaining sessions");
                    Stopped::Graceful
                }
                second = signals.next() => {
                    tracing::warn!(signal = second, "second signal; stopping without the grace period");
                    Stopped::Forced
                }
            }
        };
        self.serve_until(listener, stop).await
    }
}
