//! The servers the suite runs against and how it reaches them: the worker
//! command, the transports, and the workers started to serve a Unix socket
//! or HTTP for the length of one run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vgirpc::client::{Client, StderrMode, SubprocessOptions};
use vgirpc_client::http::HttpOptions;
use vgirpc_test_support::pki::Pki;

use super::checks::Failure;

/// A server to run the suite against: the command of a worker serving
/// `ConformanceService` (with `__describe__`) on stdin/stdout, which also
/// serves a Unix socket given `--unix PATH --threaded` and HTTP given
/// `--http`, announcing the socket (`UNIX:<path>`) or port (`PORT:<n>`) on
/// its first line of output, as the reference worker and ours both do.
#[derive(Debug, Clone)]
pub struct Server {
    /// Short name for reports.
    pub name: String,
    /// Program to spawn.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// It serves HTTPS given `--tls-cert`/`--tls-key`, and HTTP/2: our
    /// worker does, the reference's does not.
    pub tls_and_http2: bool,
}

impl Server {
    /// The command line, for reports.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The transports of [`TransportKind::ALL`] it can serve.
    pub fn transports(&self) -> impl Iterator<Item = TransportKind> {
        let tls_and_http2 = self.tls_and_http2;
        TransportKind::ALL
            .into_iter()
            .filter(move |t| tls_and_http2 || !t.needs_tls_and_http2())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransportKind {
    /// A worker spawned per connection, over its stdin/stdout.
    Pipe,
    /// One worker listening on a Unix socket, a connection per client.
    Unix,
    /// As `Pipe`, with a shared-memory segment as side channel.
    Shm,
    /// One worker serving HTTP, a client per connection.
    Http,
    /// As `Http`, in HTTP/2 with prior knowledge (h2c).
    H2c,
    /// As `Http`, over TLS with a test CA, in HTTP/2 chosen by ALPN.
    Https,
}

impl TransportKind {
    /// Every transport, in report order.
    pub const ALL: [TransportKind; 6] = [
        TransportKind::Pipe,
        TransportKind::Unix,
        TransportKind::Shm,
        TransportKind::Http,
        TransportKind::H2c,
        TransportKind::Https,
    ];

    /// The name reports and command lines use.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Pipe => "pipe",
            TransportKind::Unix => "unix",
            TransportKind::Shm => "shm",
            TransportKind::Http => "http",
            TransportKind::H2c => "h2c",
            TransportKind::Https => "https",
        }
    }

    /// Whether only a server with [`Server::tls_and_http2`] serves it.
    pub fn needs_tls_and_http2(self) -> bool {
        matches!(self, TransportKind::H2c | TransportKind::Https)
    }

    /// The transport called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Transports whose observations must agree: the byte-stream ones
    /// speak one protocol; HTTP answers some calls differently (stream
    /// starts fail at once, sticky sessions exist).
    pub(super) fn family(self) -> &'static str {
        match self {
            TransportKind::Pipe | TransportKind::Unix | TransportKind::Shm => "byte-stream",
            TransportKind::Http | TransportKind::H2c | TransportKind::Https => "http",
        }
    }
}

/// Size of the segment each shared-memory connection creates: room for the
/// suite's largest batches (a quarter MiB), many times over.
pub(super) const SHM_SEGMENT_BYTES: u64 = 16 << 20;

/// A worker serving a socket or a port for the length of one run.
pub(super) struct Listener {
    child: Child,
    socket: Option<PathBuf>,
}

impl Listener {
    /// Starts `server` with `extra` arguments and reads the line announcing
    /// where it listens, which must start with `prefix`.
    fn start(server: &Server, extra: &[String], prefix: &str) -> Result<(Self, String), String> {
        let mut command = server.command();
        command
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", server.command_line()))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let listener = Self {
            child,
            socket: None,
        };
        match read {
            Ok(_) if line.starts_with(prefix) => {
                let place = line.trim_end()[prefix.len()..].to_owned();
                Ok((listener, place))
            }
            Ok(_) => Err(format!(
                "{} {} printed {line:?}, not {prefix}...",
                server.command_line(),
                extra.join(" ")
            )),
            Err(err) => Err(format!("cannot read the worker's first line: {err}")),
        }
    }

    /// Waits until `ready` succeeds: the reference worker announces where
    /// it listens just before it binds.
    fn wait_until(ready: impl Fn() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            if Instant::now() > deadline {
                return Err("the worker never started listening".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The verdicts are in; a worker that is already gone is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// A Unix socket path no other run uses.
fn socket_path(server: &Server) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let serial = NEXT.fetch_add(1, Ordering::Relaxed);
    let name: String = server
        .name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    std::env::temp_dir().join(format!(
        "vgi-client-conf-{}-{name}-{serial}.sock",
        std::process::id()
    ))
}

/// A pipe worker spawned for one connection.
pub(super) fn spawn(
    server: &Server,
) -> Result<Client<vgirpc::client::SubprocessTransport>, Failure> {
    Ok(Client::spawn_with(
        server.command(),
        SubprocessOptions::default().stderr(StderrMode::Capture),
    )?)
}

/// Starts `server` on a Unix socket; returns it and the socket path.
pub(super) fn start_unix(server: &Server) -> Result<(Listener, PathBuf), String> {
    let socket = socket_path(server);
    let _ = std::fs::remove_file(&socket);
    let extra = [
        "--unix".to_owned(),
        socket.display().to_string(),
        "--threaded".to_owned(),
    ];
    let (mut listener, announced) = Listener::start(server, &extra, "UNIX:")?;
    listener.socket = Some(socket.clone());
    if announced != socket.display().to_string() {
        return Err(format!(
            "the worker announced {announced:?}, not {socket:?}"
        ));
    }
    Listener::wait_until(|| std::os::unix::net::UnixStream::connect(&socket).is_ok())?;
    Ok((listener, socket))
}

/// Starts `server` serving HTTP on a free port as `transport` needs;
/// returns it, its URL and the client options that reach it.
pub(super) fn start_http(
    server: &Server,
    transport: TransportKind,
) -> Result<(Listener, String, HttpOptions), String> {
    let mut flags = vec!["--http".to_owned()];
    let mut options = HttpOptions::new();
    let mut scheme = "http";
    match transport {
        TransportKind::H2c => options = options.http2_prior_knowledge(true),
        TransportKind::Https => {
            // A CA of this run only: the client trusts nothing else.
            let pki = Pki::generate();
            let dir = std::env::temp_dir().join(format!(
                "vgirpc-client-suite-{}-{}",
                std::process::id(),
                server.name
            ));
            let files = pki
                .write_to(&dir)
                .map_err(|e| format!("cannot write the test certificates: {e}"))?;
            flags.extend([
                "--tls-cert".to_owned(),
                files.server_cert.display().to_string(),
                "--tls-key".to_owned(),
                files.server_key.display().to_string(),
            ]);
            options = options
                .system_roots(false)
                .ca_certificate_pem(pki.ca_pem.into_bytes());
            scheme = "https";
        }
        _ => {}
    }
    let (listener, port) = Listener::start(server, &flags, "PORT:")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("the worker announced port {port:?}"))?;
    Listener::wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())?;
    Ok((listener, format!("{scheme}://127.0.0.1:{port}"), options))
}
