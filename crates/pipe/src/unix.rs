//! The Unix-domain-socket transport: one listening socket, each accepted
//! connection served like a pipe.
//!
//! The accept loop runs on a small tokio runtime so that a new connection,
//! the idle deadline and SIGTERM/SIGINT are waited for together. A blocking
//! `accept()` cannot be woken by closing the listener from another thread on
//! Linux, which is how an idle timer that closes the socket ends up never
//! firing; selecting over all three avoids that. Connections wait for their
//! requests on the same runtime and are served on a bounded pool of threads,
//! because the server core is synchronous (see [`connection`]).

mod connection;

use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, sleep, sleep_until};
use vgirpc::transport::SideChannels;
use vgirpc::{Server, TransportKind};

use self::connection::{Phase, Shared, Slot};
use crate::PipeError;

/// Before the first client arrives, the worker waits at least this long, so
/// a slow launcher is not raced by its own worker's idle timer.
const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// Connections a threaded worker holds open at once unless configured:
/// an idle connection costs a socket and about a kilobyte, so thousands of
/// idle clients still leave room for busy ones.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Requests a threaded worker serves at once unless configured; each one
/// being served holds a thread and its I/O buffers.
pub const DEFAULT_MAX_ACTIVE_REQUESTS: usize = 256;

/// How long requests already received may take to be answered after
/// SIGTERM or SIGINT, as the reference's HTTP server allows.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(30);

/// How long a peer may pause in the middle of a message unless configured,
/// as the HTTP transport allows within a request body.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// File descriptors kept free beyond the connections, for everything else
/// the process opens (the listener, log files, shared-memory segments).
const SPARE_DESCRIPTORS: u64 = 64;

/// After `accept` fails (descriptors exhausted, say), the pause before the
/// next attempt, so the failure is not retried in a busy loop.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How a Unix-socket worker listens and when it stops.
#[derive(Debug, Clone)]
pub struct UnixConfig {
    /// Where to bind the socket.
    pub path: PathBuf,
    /// Serve connections concurrently (otherwise one at a time).
    pub threaded: bool,
    /// With `threaded`, the most connections held open at once, idle or
    /// busy; more wait in the listen backlog until one closes. `None` is
    /// [`DEFAULT_MAX_CONNECTIONS`]. The process's open-file limit is raised
    /// to fit when it can be, and bounds this when it cannot.
    pub max_connections: Option<usize>,
    /// With `threaded`, the most requests served at once (a stream counts
    /// until it ends); connections with a request beyond this wait, without
    /// a thread, for one to finish. Defaults to
    /// [`DEFAULT_MAX_ACTIVE_REQUESTS`].
    pub max_active_requests: usize,
    /// Shut down after this long with no connected client (the first wait
    /// is at least a minute). `None` never shuts down for idleness.
    pub idle_timeout: Option<Duration>,
    /// After SIGTERM or SIGINT, how long requests already received may take
    /// to be answered before their connections are closed regardless.
    /// Defaults to [`DEFAULT_DRAIN_GRACE`].
    pub drain_grace: Duration,
    /// The longest a peer may go without sending a byte in the middle of a
    /// message (one it has begun: a request, or an input batch of a
    /// stream); the connection is then answered with the error and closed,
    /// which gives back the serving thread and the memory the message was
    /// filling. Between messages a peer may take as long as it likes.
    /// Defaults to [`DEFAULT_BODY_READ_TIMEOUT`]; `None` waits forever.
    pub body_read_timeout: Option<Duration>,
}

impl UnixConfig {
    /// A sequential worker at `path` that never idles out.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            threaded: false,
            max_connections: None,
            max_active_requests: DEFAULT_MAX_ACTIVE_REQUESTS,
            idle_timeout: None,
            drain_grace: DEFAULT_DRAIN_GRACE,
            body_read_timeout: Some(DEFAULT_BODY_READ_TIMEOUT),
        }
    }

    fn connection_limit(&self) -> usize {
        if self.threaded {
            self.max_connections
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                .max(1)
        } else {
            1
        }
    }

    fn active_request_limit(&self) -> usize {
        if self.threaded {
            self.max_active_requests.max(1)
        } else {
            1
        }
    }

    fn backlog(&self) -> i32 {
        if self.threaded { 128 } else { 16 }
    }
}

/// Why [`serve_unix`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnixShutdown {
    /// No client was connected for the idle timeout.
    Idle,
    /// SIGTERM or SIGINT arrived; requests already received were answered
    /// (within the grace period) first.
    Signal,
    /// The `stop` future given to [`serve_unix_until`] completed; requests
    /// already received were answered (within the grace period) first.
    Requested,
}

/// Removes the socket file however serving ends.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_file(&self.0)
            && err.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), %err, "cannot remove socket file");
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, PipeError> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| PipeError::Bind {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(cwd.join(path))
}

/// Binds `path`, replacing a socket file left behind by a dead worker but
/// refusing to steal one a live worker still listens on.
fn bind(path: &Path, backlog: i32) -> Result<std::os::unix::net::UnixListener, PipeError> {
    let bind_error = |source| PipeError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        match StdUnixStream::connect(path) {
            Ok(_) => {
                return Err(bind_error(std::io::Error::new(
                    ErrorKind::AddrInUse,
                    "another worker is listening on this socket",
                )));
            }
            Err(_) => std::fs::remove_file(path).map_err(bind_error)?,
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(bind_error)?;
    let address = SockAddr::unix(path).map_err(bind_error)?;
    socket.bind(&address).map_err(bind_error)?;
    socket.listen(backlog).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    Ok(socket.into())
}

/// Serves `server` on a Unix socket until idle or signalled.
///
/// `ready` is called with the absolute socket path once the socket listens
/// (workers print `UNIX:<path>` there). The socket file is removed on every
/// way out, errors included.
///
/// On SIGTERM or SIGINT the worker drains: it stops accepting, answers the
/// requests it has received (a stream runs to its end), closes each
/// connection once it is quiet, and returns [`UnixShutdown::Signal`] when
/// all are closed or [`UnixConfig::drain_grace`] has passed, whichever is
/// first; a second signal ends the grace period at once.
///
/// To hold [`UnixConfig::max_connections`] connections the process's soft
/// limit on open files is raised, up to its hard limit, if it is lower.
pub fn serve_unix<S>(
    server: &Server,
    config: &UnixConfig,
    side_channels: S,
    ready: impl FnOnce(&Path),
) -> Result<UnixShutdown, PipeError>
where
    S: SideChannels + Send + Sync + 'static,
{
    serve_unix_until(server, config, side_channels, ready, std::future::pending())
}

/// [`serve_unix`] that also drains and stops when `stop` completes, as on
/// a signal, returning [`UnixShutdown::Requested`].
pub fn serve_unix_until<S>(
    server: &Server,
    config: &UnixConfig,
    side_channels: S,
    ready: impl FnOnce(&Path),
    stop: impl Future<Output = ()>,
) -> Result<UnixShutdown, PipeError>
where
    S: SideChannels + Send + Sync + 'static,
{
    let active_requests = config.active_request_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(active_requests)
        .thread_name("vgirpc-unix-call")
        .build()
        .map_err(PipeError::Runtime)?;
    let path = absolute(&config.path)?;
    let connection_limit = fit_descriptor_limit(config.connection_limit());
    let listener = bind(&path, config.backlog())?;
    let _socket_file = SocketFile(path.clone());
    server.notify_serve_start(TransportKind::Unix)?;
    let shared = Arc::new(Shared::new(
        server.clone(),
        side_channels,
        active_requests.min(connection_limit),
        config
            .body_read_timeout
            .filter(|timeout| !timeout.is_zero()),
    ));
    let outcome = runtime.block_on(async {
        let listener = UnixListener::from_std(listener).map_err(|source| PipeError::Bind {
            path: path.clone(),
            source,
        })?;
        let mut signals = Signals::install()?;
        ready(&path);
        let listening = Listening {
            shared: &shared,
            connection_limit,
            idle_timeout: config.idle_timeout,
        };
        let reason = listening
            .accept_until_stopped(&listener, &mut signals, stop)
            .await;
        if reason != UnixShutdown::Idle {
            listening
                .drain(listener, config.drain_grace, &mut signals)
                .await;
        }
        Ok(reason)
    });
    // Calls cut off at the end of the grace period may still be running on
    // their threads; they are not waited for.
    runtime.shutdown_background();
    outcome
}

/// SIGTERM and SIGINT, caught from before the socket is announced.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Self, PipeError> {
        Ok(Self {
            term: signal(SignalKind::terminate()).map_err(PipeError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(PipeError::Signals)?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// The accept loop's view of a listening server.
struct Listening<'a, S> {
    shared: &'a Arc<Shared<S>>,
    connection_limit: usize,
    idle_timeout: Option<Duration>,
}

impl<S: SideChannels + Send + Sync + 'static> Listening<'_, S> {
    /// Accepts connections until the idle timeout, a signal or `stop`.
    async fn accept_until_stopped(
        &self,
        listener: &UnixListener,
        signals: &mut Signals,
        stop: impl Future<Output = ()>,
    ) -> UnixShutdown {
        let connections = &self.shared.connections;
        let mut idle_deadline = self
            .idle_timeout
            .map(|idle| Instant::now() + idle.max(STARTUP_GRACE));
        let mut stop = std::pin::pin!(stop);
        loop {
            let has_room = connections.open() < self.connection_limit;
            tokio::select! {
                accepted = listener.accept(), if has_room => match accepted {
                    Ok((stream, _)) => {
                        idle_deadline = None;
                        self.spawn(stream);
                    }
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        sleep(ACCEPT_RETRY).await;
                    }
                },
                () = connections.closed() => {
                    if connections.open() == 0 {
                        idle_deadline = self.idle_timeout.map(|idle| Instant::now() + idle);
                    }
                }
                () = sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => {
                    if connections.open() == 0 {
                        tracing::info!("idle timeout reached; shutting down");
                        return UnixShutdown::Idle;
                    }
                    idle_deadline = None;
                }
                () = signals.next() => return UnixShutdown::Signal,
                () = &mut stop => return UnixShutdown::Requested,
            }
        }
    }

    fn spawn(&self, stream: UnixStream) {
        let slot = Slot::take(self.shared);
        tokio::spawn(connection::run(slot, stream));
    }

    /// Stops accepting, lets the requests already received be answered and
    /// closes every connection, within `grace`.
    async fn drain(&self, listener: UnixListener, grace: Duration, signals: &mut Signals) {
        self.shared.phase.send_replace(Phase::Draining);
        self.take_backlog(listener);
        let connections = &self.shared.connections;
        tracing::info!(
            connections = connections.open(),
            grace_secs = grace.as_secs_f64(),
            "draining: answering the requests received, then closing"
        );
        let deadline = sleep(grace);
        let mut deadline = std::pin::pin!(deadline);
        while connections.open() > 0 {
            tokio::select! {
                () = connections.closed() => {}
                () = &mut deadline => {
                    tracing::warn!(connections = connections.open(), "grace period over; closing the remaining connections");
                    break;
                }
                () = signals.next() => {
                    tracing::warn!("second signal; closing the remaining connections");
                    break;
                }
            }
        }
        self.shared.phase.send_replace(Phase::Closing);
        // Every connection now closes without waiting for anything.
        while connections.open() > 0 {
            connections.closed().await;
        }
    }

    /// Takes in the connections still queued on the listener, then closes
    /// it. A client whose connection is queued may already have sent its
    /// request: it is answered, not reset; the others are closed at once.
    fn take_backlog(&self, listener: UnixListener) {
        let listener = match listener.into_std() {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(%err, "cannot take the queued connections");
                return;
            }
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => match stream
                    .set_nonblocking(true)
                    .and_then(|()| UnixStream::from_std(stream))
                {
                    Ok(stream) => self.spawn(stream),
                    Err(err) => tracing::debug!(%err, "cannot take a queued connection"),
                },
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) => {
                    tracing::warn!(%err, "cannot take the queued connections");
                    return;
                }
            }
        }
    }
}

/// Raises the process's soft limit on open files toward what `connections`
/// need (never past the hard limit) and returns how many connections the
/// limit leaves room for.
fn fit_descriptor_limit(connections: usize) -> usize {
    let wanted = u64::try_from(connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_DESCRIPTORS);
    let limit = getrlimit(Resource::Nofile);
    let Some(mut current) = limit.current else {
        return connections;
    };
    if current < wanted {
        let raised = limit.maximum.map_or(wanted, |maximum| maximum.min(wanted));
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => current = raised,
            Err(err) => tracing::debug!(%err, "cannot raise the open-file limit"),
        }
    }
    let room = usize::try_from(current.saturating_sub(SPARE_DESCRIPTORS))
        .unwrap_or(usize::MAX)
        .max(1);
    if room < connections {
        tracing::info!(
            connections,
            room,
            "the open-file limit bounds the connections held open at once"
        );
    }
    connections.min(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_raised_to_fit_and_bounds_the_connections() {
        let hard = getrlimit(Resource::Nofile).maximum;
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(256),
                maximum: hard,
            },
        )
        .unwrap();
        let fits = hard.map_or(1064, |hard| hard.min(1064));
        assert_eq!(fit_descriptor_limit(1000) as u64, fits - SPARE_DESCRIPTORS);
        assert_eq!(getrlimit(Resource::Nofile).current, Some(fits));

        let room = fit_descriptor_limit(usize::MAX);
        let soft = getrlimit(Resource::Nofile).current;
        assert_eq!(soft, hard, "the soft limit is raised as far as it goes");
        if let Some(soft) = soft {
            assert_eq!(room as u64, soft - SPARE_DESCRIPTORS);
        }
    }
}
