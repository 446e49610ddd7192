//! Starting the two servers on each transport and connecting our client.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use vgirpc_client::http::{HttpOptions, HttpTransport};
use vgirpc_client::{Client, ShmSegment, SubprocessOptions};

use crate::rpc::{AsyncRpc, HttpRpc, Rpc};

/// Size of the client's shared-memory segment: room for the largest
/// workload's 8 MB batches in both directions.
const SHM_SEGMENT_BYTES: u64 = 64 << 20;

/// Which implementation serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// Our Rust worker.
    Ours,
    /// The reference Python worker.
    Reference,
    /// The Arrow Flight server of the `flight` comparison, started by
    /// [`crate::flight`] rather than by [`Workers`].
    Flight,
}

impl Server {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Reference => "reference",
            Server::Flight => "flight",
        }
    }
}

/// How the client reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// The worker's stdin/stdout.
    Pipe,
    /// A Unix domain socket the worker listens on.
    Unix,
    /// The pipe, with batches in a shared-memory segment the client owns.
    Shm,
    /// HTTP on the loopback interface, one request per turn.
    Http,
    /// The Unix socket, through our async client.
    UnixAsync,
}

impl TransportKind {
    /// Every transport, in report order.
    pub(crate) const ALL: [TransportKind; 5] = [
        TransportKind::Pipe,
        TransportKind::Unix,
        TransportKind::Shm,
        TransportKind::Http,
        TransportKind::UnixAsync,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            TransportKind::Pipe => "pipe",
            TransportKind::Unix => "unix",
            TransportKind::Shm => "shm",
            TransportKind::Http => "http",
            TransportKind::UnixAsync => "unix-async",
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .with_context(|| {
                format!("unknown transport {name:?} (pipe, unix, shm, http, unix-async)")
            })
    }

    /// Why this transport cannot be measured yet, when it cannot.
    ///
    /// Measuring one needs only a branch in [`Workers::launch`] that starts
    /// both workers for it and hands back an [`Rpc`]; the workloads, the
    /// timing and the report take it from there.
    pub(crate) fn not_measurable(self) -> Option<&'static str> {
        match self {
            TransportKind::Pipe
            | TransportKind::Unix
            | TransportKind::Shm
            | TransportKind::Http
            | TransportKind::UnixAsync => None,
        }
    }
}

/// The worker programs under test.
#[derive(Debug)]
pub(crate) struct Workers {
    ours: PathBuf,
    reference: Option<PathBuf>,
    /// Where sockets go; removed by the caller.
    scratch: PathBuf,
    launched: u32,
}

impl Workers {
    pub(crate) fn new(ours: PathBuf, reference: Option<PathBuf>, scratch: PathBuf) -> Self {
        Self {
            ours,
            reference,
            scratch,
            launched: 0,
        }
    }

    /// The servers to compare: ours, and the reference when it was given.
    pub(crate) fn servers(&self) -> Vec<Server> {
        let mut servers = vec![Server::Ours];
        if self.reference.is_some() {
            servers.push(Server::Reference);
        }
        servers
    }

    pub(crate) fn program(&self, server: Server) -> Option<&Path> {
        match server {
            Server::Ours => Some(&self.ours),
            Server::Reference => self.reference.as_deref(),
            Server::Flight => None,
        }
    }

    /// Starts `server` on `transport` and connects to it; returns once the
    /// connection is open (not once the server has answered anything).
    pub(crate) fn launch(&mut self, server: Server, transport: TransportKind) -> Result<Endpoint> {
        self.launch_with(server, transport, &[])
    }

    /// [`Workers::launch`], with `flags` added to the worker's command line.
    pub(crate) fn launch_with(
        &mut self,
        server: Server,
        transport: TransportKind,
        flags: &[&str],
    ) -> Result<Endpoint> {
        let program = self
            .program(server)
            .with_context(|| format!("no {} worker was given", server.name()))?
            .to_path_buf();
        self.launched += 1;
        match transport {
            TransportKind::Pipe | TransportKind::Shm => {
                // Worker stderr is forwarded: a worker in trouble says why.
                let mut command = Command::new(&program);
                command.args(flags);
                let client = Client::spawn_with(command, SubprocessOptions::default())
                    .with_context(|| format!("spawning {}", program.display()))?;
                let pid = client.transport().pid();
                let rpc: Box<dyn Rpc> = if transport == TransportKind::Shm {
                    let segment = ShmSegment::create(SHM_SEGMENT_BYTES)
                        .context("creating the shared-memory segment")?;
                    Box::new(client.with_shm(segment))
                } else {
                    Box::new(client)
                };
                Ok(Endpoint {
                    rpc,
                    pid,
                    http_address: None,
                    _listener: None,
                })
            }
            TransportKind::Unix | TransportKind::UnixAsync => {
                let socket = self
                    .scratch
                    .join(format!("{}-{}.sock", server.name(), self.launched));
                let mut command = Command::new(&program);
                command.args(flags).arg("--unix").arg(&socket);
                if server == Server::Ours {
                    // One connection at a time, as the reference serves by
                    // default, and no idle exit during long runs.
                    command.args(["--no-threaded", "--idle-timeout", "0"]);
                }
                let listener = Listener::start(command, "UNIX:", Some(socket.clone()))?;
                let rpc: Box<dyn Rpc> = if transport == TransportKind::UnixAsync {
                    // A worker may print its path before it listens; the
                    // blocking connect waits for it, then steps aside.
                    drop(listener.connect_unix()?);
                    Box::new(AsyncRpc::connect_unix(&socket)?)
                } else {
                    let stream = listener.connect_unix()?;
                    let reader = stream.try_clone().context("cloning the socket")?;
                    Box::new(Client::from_io(reader, stream))
                };
                let pid = listener.child.id();
                Ok(Endpoint {
                    rpc,
                    pid,
                    http_address: None,
                    _listener: Some(listener),
                })
            }
            TransportKind::Http => {
                let mut command = Command::new(&program);
                command.args(flags).arg("--http");
                let listener = Listener::start(command, "PORT:", None)?;
                let url = format!("http://127.0.0.1:{}", listener.ready.trim());
                listener.wait_for_tcp(&url)?;
                let address: SocketAddr = format!("127.0.0.1:{}", listener.ready.trim())
                    .parse()
                    .with_context(|| format!("the worker's port {:?}", listener.ready))?;
                let transport = HttpTransport::new(&url, HttpOptions::new())
                    .with_context(|| format!("an HTTP client for {url}"))?;
                let pid = listener.child.id();
                Ok(Endpoint {
                    rpc: Box::new(HttpRpc(Client::new(transport))),
                    pid,
                    http_address: Some(address),
                    _listener: Some(listener),
                })
            }
        }
    }
}

/// A connected server.
pub(crate) struct Endpoint {
    /// The connection. Declared first so it closes before the listener's
    /// worker is stopped.
    pub(crate) rpc: Box<dyn Rpc>,
    /// The worker's process id, for CPU and memory readings.
    pub(crate) pid: u32,
    /// Where an HTTP worker listens, for connections of our own beside
    /// `rpc`'s (the load test).
    pub(crate) http_address: Option<SocketAddr>,
    /// Stops the worker when the endpoint drops (Unix sockets).
    _listener: Option<Listener>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// A worker listening on a Unix socket or a TCP port.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) child: Child,
    /// What followed the ready line's prefix: the socket path or the port.
    pub(crate) ready: String,
    /// The socket file, removed when the worker stops.
    socket: Option<PathBuf>,
    /// Held open so a late write to stdout cannot kill the worker.
    _stdout: BufReader<ChildStdout>,
}

impl Listener {
    /// Starts the worker and waits for its ready line, `UNIX:<path>` or
    /// `PORT:<port>` (`prefix` says which).
    pub(crate) fn start(
        mut command: Command,
        prefix: &str,
        socket: Option<PathBuf>,
    ) -> Result<Self> {
        if let Some(socket) = &socket {
            let _ = std::fs::remove_file(socket);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {:?}", command.get_program()))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .context("reading the ready line")?;
        let Some(ready) = line.strip_prefix(prefix) else {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!("expected a {prefix} line from the worker, got {line:?} (worker: {status:?})");
        };
        Ok(Self {
            ready: ready.trim().to_owned(),
            child,
            socket,
            _stdout: stdout,
        })
    }

    /// Connects to the socket, retrying while it is not yet bound: the
    /// reference worker prints its ready line before it binds.
    fn connect_unix(&self) -> Result<UnixStream> {
        let path = PathBuf::from(&self.ready);
        retry_connect(|| UnixStream::connect(&path))
            .with_context(|| format!("connecting to {}", path.display()))
    }

    /// Waits until the port accepts connections, for the same reason.
    pub(crate) fn wait_for_tcp(&self, url: &str) -> Result<()> {
        let address = format!("127.0.0.1:{}", self.ready);
        retry_connect(|| TcpStream::connect(&address))
            .map(drop)
            .with_context(|| format!("connecting to {url}"))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The worker is ours to stop; a failure means it already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// Calls `connect` until it succeeds or 30 s have passed.
fn retry_connect<T>(mut connect: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match connect() {
            Ok(connected) => return Ok(connected),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(err) => return Err(err),
        }
    }
}
