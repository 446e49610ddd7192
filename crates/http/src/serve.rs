//! The accept loop: at most `max_connections` connections at once, each on
//! its own task, and a drain that answers what was received before it
//! returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::ConnectionLimits;
use crate::connection::{self, Shared};
use crate::{HttpError, HttpServer, HttpService};

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// Every connection closed after its last response.
    Completely,
    /// The drain timeout passed; the connections left were cut.
    TimedOut,
    /// The caller cut the drain short; the connections left were cut.
    Interrupted,
}

/// The connections of a server that stopped accepting.
pub(crate) struct Connections {
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl Connections {
    /// Answers the requests already received, closing every connection
    /// after its response (or at once when idle), for at most the drain
    /// timeout or until `cut` completes.
    pub(crate) async fn drain(mut self, cut: impl Future<Output = ()>) -> Drained {
        self.shared.start_draining();
        let open = self.tasks.len();
        if open > 0 {
            tracing::info!(
                connections = open,
                timeout_secs = self.timeout.as_secs_f64(),
                "draining: answering the requests in flight"
            );
        }
        let all_closed = async { while self.tasks.join_next().await.is_some() {} };
        let drained = tokio::select! {
            closed = tokio::time::timeout(self.timeout, all_closed) => match closed {
                Ok(()) => return Drained::Completely,
                Err(_) => Drained::TimedOut,
            },
            () = cut => Drained::Interrupted,
        };
        tracing::warn!(
            connections = self.tasks.len(),
            "closing the connections still serving a request"
        );
        // Aborted, not awaited: a method blocking its thread still ends
        // its connection once it returns.
        self.tasks.abort_all();
        drained
    }
}

impl HttpServer {
    /// Serves connections from `listener` until `shutdown` completes, then
    /// drains: stops accepting (new connections are refused), answers
    /// every request already received, each with `Connection: close`,
    /// closes idle connections, and returns once all are closed, or when
    /// the drain timeout ([`HttpConfig::with_drain_timeout`]) has passed,
    /// cutting the connections still open.
    ///
    /// Each connection is HTTP/1.1 with keep-alive, on its own task, under
    /// the timeouts and the connection limit of the [`HttpConfig`].
    ///
    /// [`HttpConfig`]: crate::HttpConfig
    /// [`HttpConfig::with_drain_timeout`]: crate::HttpConfig::with_drain_timeout
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), HttpError> {
        let ((), connections) = self.serve_until(listener, shutdown).await?;
        connections.drain(std::future::pending()).await;
        Ok(())
    }

    /// Accepts and serves until `stop` completes; returns its output and
    /// the connections still open, with the listener closed.
    pub(crate) async fn serve_until<T>(
        self,
        listener: TcpListener,
        stop: impl Future<Output = T>,
    ) -> Result<(T, Connections), HttpError> {
        let limits = self.limits;
        let max = limits.max_connections;
        let shared = Arc::new(Shared::new());
        let mut tasks = JoinSet::new();
        // A connection accepted while every slot was taken, waiting for one.
        let mut waiting: Option<(TcpStream, std::net::SocketAddr, u64)> = None;
        let spawn = |tasks: &mut JoinSet<()>, accepted| {
            let service: HttpService = self.service.clone();
            tasks.spawn(connection::serve(
                accepted,
                service,
                limits,
                shared.clone(),
                self.tls.as_ref().map(|(acceptor, _)| acceptor.clone()),
            ));
        };
        let mut stop = std::pin::pin!(stop);
        let stopped = loop {
            if tasks.len() < max
                && let Some(accepted) = waiting.take()
            {
                spawn(&mut tasks, accepted);
            }
            tokio::select! {
                biased;
                stopped = &mut stop => break stopped,
                Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(err) = ended
                        && err.is_panic()
                    {
                        tracing::error!(%err, "a connection task panicked");
                    }
                }
                // Beyond the limit new connections stay in the listen queue.
                accepted = listener.accept(), if waiting.is_none() => match accepted {
                    Ok((stream, peer)) if tasks.len() < max => {
                        spawn(&mut tasks, (stream, peer, shared.evictions()));
                    }
                    Ok((stream, peer)) => {
                        // Counted after its own request, which is not
                        // meant for it.
                        shared.evict_silent();
                        waiting = Some((stream, peer, shared.evictions()));
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin, and keep serving.
                        tracing::warn!(%err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        };
        // Closing the listener refuses new connections from here on; the
        // one already accepted is served like the others.
        drop(listener);
        if let Some(accepted) = waiting {
            spawn(&mut tasks, accepted);
        }
        Ok((
            stopped,
            Connections {
                tasks,
                shared,
                timeout: limits.drain_timeout,
            },
        ))
    }
}

/// The limits a server was built with, checked once.
pub(crate) fn check_limits(limits: &ConnectionLimits) -> Result<(), HttpError> {
    if limits.max_connections == 0 {
        return Err(HttpError::Config(
            "max_connections must be at least 1".into(),
        ));
    }
    Ok(())
}
