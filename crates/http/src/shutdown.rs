//! Serving until SIGTERM or SIGINT, then draining: sticky sessions for
//! their grace period, then the requests in flight.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::serve::Drained;
use crate::{HttpError, HttpServer};

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
    /// After one signal: the requests in flight were answered (or cut at
    /// the drain timeout), after the grace period of sticky sessions.
    Graceful,
    /// A second signal cut the grace period or the drain short; sessions
    /// were left unclosed and requests in flight cut, as after a crash.
    Forced,
}

impl HttpServer {
    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    ///
    /// With sticky sessions it first drains them: new sessions are refused
    /// with `ServerDrainingError` while existing ones are served for
    /// `grace` more; then every remaining session is closed. Then, as
    /// [`HttpServer::serve`] after its shutdown, it stops accepting and
    /// answers the requests already received, for at most the drain
    /// timeout. A second signal at any point stops at once.
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
                return (Stopped::Graceful, signals);
            };
            drain.drain();
            tracing::info!(
                signal = first,
                grace_secs = grace.as_secs_f64(),
                "draining: refusing new sessions, serving existing ones until the grace period ends"
            );
            let stopped = tokio::select! {
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
            };
            (stopped, signals)
        };
        let ((stopped, mut signals), connections) = self.serve_until(listener, stop).await?;
        if stopped == Stopped::Forced {
            return Ok(stopped);
        }
        let second = async move {
            let second = signals.next().await;
            tracing::warn!(
                signal = second,
                "second signal; cutting the requests in flight"
            );
        };
        Ok(match connections.drain(second).await {
            Drained::Completely | Drained::TimedOut => Stopped::Graceful,
            Drained::Interrupted => Stopped::Forced,
        })
    }
}
