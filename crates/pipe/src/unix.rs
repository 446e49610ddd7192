//! The Unix-domain-socket transport: one listening socket, each accepted
//! connection served like a pipe.
//!
//! The accept loop runs on a small tokio runtime so that a new connection,
//! the idle deadline and SIGTERM/SIGINT are waited for together. A blocking
//! `accept()` cannot be woken by closing the listener from another thread on
//! Linux, which is how an idle timer that closes the socket ends up never
//! firing; selecting over all three avoids that. Connections themselves are
//! served on plain threads, because the server core is synchronous.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use vgirpc::{Server, SideChannels, TransportKind};

use crate::PipeError;

/// Before the first client arrives, the worker waits at least this long, so
/// a slow launcher is not raced by its own worker's idle timer.
const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// How a Unix-socket worker listens and when it stops.
#[derive(Debug, Clone)]
pub struct UnixConfig {
    /// Where to bind the socket.
    pub path: PathBuf,
    /// Serve connections concurrently (otherwise one at a time).
    pub threaded: bool,
    /// With `threaded`, the most connections served at once; more wait in
    /// the listen backlog.
    pub max_connections: Option<usize>,
    /// Shut down after this long with no connected client (the first wait
    /// is at least a minute). `None` never shuts down for idleness.
    pub idle_timeout: Option<Duration>,
}

impl UnixConfig {
    /// A sequential worker at `path` that never idles out.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            threaded: false,
            max_connections: None,
            idle_timeout: None,
        }
    }

    fn connection_limit(&self) -> usize {
        if self.threaded {
            self.max_connections.unwrap_or(usize::MAX).max(1)
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
    /// SIGTERM or SIGINT arrived.
    Signal,
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
pub fn serve_unix<S>(
    server: &Server,
    config: &UnixConfig,
    side_channels: S,
    ready: impl FnOnce(&Path),
) -> Result<UnixShutdown, PipeError>
where
    S: SideChannels + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PipeError::Runtime)?;
    let path = absolute(&config.path)?;
    let listener = bind(&path, config.backlog())?;
    let _socket_file = SocketFile(path.clone());
    server.notify_serve_start(TransportKind::Unix)?;
    runtime.block_on(accept_loop(
        server.clone(),
        config,
        Arc::new(side_channels),
        listener,
        &path,
        ready,
    ))
}

async fn accept_loop<S>(
    server: Server,
    config: &UnixConfig,
    side_channels: Arc<S>,
    listener: std::os::unix::net::UnixListener,
    path: &Path,
    ready: impl FnOnce(&Path),
) -> Result<UnixShutdown, PipeError>
where
    S: SideChannels + Send + Sync + 'static,
{
    let listener = UnixListener::from_std(listener).map_err(|source| PipeError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(PipeError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(PipeError::Signals)?;
    ready(path);

    let limit = config.connection_limit();
    let active = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(Notify::new());
    let mut idle_deadline = config
        .idle_timeout
        .map(|idle| Instant::now() + idle.max(STARTUP_GRACE));
    loop {
        let has_room = active.load(Ordering::SeqCst) < limit;
        tokio::select! {
            accepted = listener.accept(), if has_room => {
                let stream = match accepted.and_then(|(stream, _)| stream.into_std()) {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        continue;
                    }
                };
                active.fetch_add(1, Ordering::SeqCst);
                idle_deadline = None;
                spawn_connection(
                    server.clone(),
                    side_channels.clone(),
                    stream,
                    active.clone(),
                    finished.clone(),
                );
            }
            () = finished.notified() => {
                if active.load(Ordering::SeqCst) == 0 {
                    idle_deadline = config.idle_timeout.map(|idle| Instant::now() + idle);
                }
            }
            () = sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => {
                if active.load(Ordering::SeqCst) == 0 {
                    tracing::info!("idle timeout reached; shutting down");
                    return Ok(UnixShutdown::Idle);
                }
                idle_deadline = None;
            }
            _ = sigterm.recv() => return Ok(UnixShutdown::Signal),
            _ = sigint.recv() => return Ok(UnixShutdown::Signal),
        }
    }
}

fn spawn_connection<S>(
    server: Server,
    side_channels: Arc<S>,
    stream: StdUnixStream,
    active: Arc<AtomicUsize>,
    finished: Arc<Notify>,
) where
    S: SideChannels + Send + Sync + 'static,
{
    let serve = move || {
        if let Err(err) = serve_connection(&server, side_channels.as_ref(), stream) {
            // One client's broken stream must not affect any other client.
            tracing::debug!(error = ?err, "unix connection ended with an error");
        }
        active.fetch_sub(1, Ordering::SeqCst);
        finished.notify_one();
    };
    if let Err(err) = std::thread::Builder::new()
        .name("vgirpc-unix-conn".into())
        .spawn(serve)
    {
        tracing::error!(%err, "cannot start a connection thread");
    }
}

fn serve_connection<S: SideChannels>(
    server: &Server,
    side_channels: &S,
    stream: StdUnixStream,
) -> Result<(), PipeError> {
    stream.set_nonblocking(false)?;
    let reader = std::io::BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let writer = std::io::BufWriter::with_capacity(256 * 1024, stream);
    server.serve_with(reader, writer, TransportKind::Unix, side_channels)?;
    Ok(())
}
