//! What the Unix-socket tests share: a service whose calls the test can
//! hold open or make panic, and a bare client for it.

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vgirpc::arrow::array::{RecordBatch, StringArray};
use vgirpc::arrow::schema::{DataType, Field, Schema};
use vgirpc::transport::NoSideChannels;
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc::wire::request::Request;
use vgirpc::{CallContext, RpcError, Server};
use vgirpc_pipe::{PipeError, UnixConfig, UnixShutdown, serve_unix_until};

/// An upper bound for anything that should happen: only a hang reaches it.
pub(crate) const HANG: Duration = Duration::from_secs(30);

/// Service used by these tests.
#[vgirpc::service]
pub(crate) trait Probe {
    /// Returns `value`.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Returns `value` once the test opens the gate.
    fn held(&self, value: String) -> Result<String, RpcError>;
    /// Panics with `value`.
    fn panics(&self, value: String) -> Result<String, RpcError>;
    /// The caller as `domain:principal:pid`, with `value` ignored.
    fn whoami(&self, ctx: &CallContext, value: String) -> Result<String, RpcError>;
}

struct ProbeImpl {
    entered: Mutex<Sender<String>>,
    release: Mutex<Receiver<()>>,
}

impl Probe for ProbeImpl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }

    fn held(&self, value: String) -> Result<String, RpcError> {
        let _ = self.entered.lock().unwrap().send(value.clone());
        self.release
            .lock()
            .unwrap()
            .recv_timeout(HANG)
            .expect("the test opens the gate");
        Ok(value)
    }

    fn panics(&self, value: String) -> Result<String, RpcError> {
        panic!("{value}");
    }

    fn whoami(&self, ctx: &CallContext, _value: String) -> Result<String, RpcError> {
        let auth = ctx.auth();
        let pid = auth.claims.get("pid").map(ToString::to_string);
        Ok(format!(
            "{}:{}:{}",
            auth.domain_or_empty(),
            auth.principal_or_empty(),
            pid.unwrap_or_default()
        ))
    }
}

/// The test's side of `held`: sees calls arrive and lets them go.
pub(crate) struct Gate {
    entered: Receiver<String>,
    release: Sender<()>,
}

impl Gate {
    /// Waits until a `held` call has started; returns its value.
    pub(crate) fn entered(&self) -> String {
        self.entered
            .recv_timeout(HANG)
            .expect("a held call started")
    }

    /// Lets one `held` call return.
    pub(crate) fn open(&self) {
        self.release.send(()).unwrap();
    }
}

/// A server for [`Probe`] and the gate of its `held` calls.
pub(crate) fn probe_server() -> (Server, Gate) {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let server = Server::new(ProbeServer::new(ProbeImpl {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    }))
    .unwrap();
    (server, Gate { entered, release })
}

/// A socket path no other test uses.
pub(crate) fn socket_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "vgirpc-pipe-{}-{}-{name}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Connects with reads bounded by [`HANG`].
pub(crate) fn connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream
}

/// The bytes of a call to `method` with `value`.
pub(crate) fn request(method: &str, value: &str) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![value]))],
    )
    .unwrap();
    write_stream_bytes(&schema, [(&batch, &Request::metadata_for(method))]).unwrap()
}

/// Sends a call to `method` with `value`.
pub(crate) fn send(stream: &mut UnixStream, method: &str, value: &str) {
    stream.write_all(&request(method, value)).unwrap();
}

/// Reads the answer to a call: its string result, or why there is none.
pub(crate) fn answer(stream: &mut UnixStream) -> Result<String, String> {
    let mut reader = StreamReader::open(&mut *stream).map_err(|e| e.to_string())?;
    let batch = reader
        .next_batch()
        .map_err(|e| e.to_string())?
        .ok_or("no batch")?;
    reader.drain().map_err(|e| e.to_string())?;
    if let BatchKind::Error(info) = classify(&batch.batch, &batch.metadata) {
        return Err(format!("{}: {}", info.error_type, info.message));
    }
    let column = batch
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("not a string result")?;
    Ok(column.value(0).to_owned())
}

/// A call to `method` with `value` and its answer.
pub(crate) fn call(stream: &mut UnixStream, method: &str, value: &str) -> Result<String, String> {
    send(stream, method, value);
    answer(stream)
}

/// `Threads:` of this process's `/proc` status.
pub(crate) fn threads() -> usize {
    status_field("Threads:")
}

/// `VmRSS:` of this process's `/proc` status, in KiB.
pub(crate) fn rss_kib() -> usize {
    status_field("VmRSS:")
}

fn status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// A threaded server on its own thread, stopped through `serve_unix_until`.
pub(crate) struct Running {
    pub(crate) path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<JoinHandle<Result<UnixShutdown, PipeError>>>,
}

pub(crate) fn start(server: Server, configure: impl FnOnce(&mut UnixConfig)) -> Running {
    let path = socket_path("server");
    let mut config = UnixConfig::new(&path);
    config.threaded = true;
    configure(&mut config);
    let (ready, listening) = channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        serve_unix_until(
            &server,
            &config,
            NoSideChannels,
            |_| ready.send(()).unwrap(),
            async {
                let _ = stopped.await;
            },
        )
    });
    listening.recv_timeout(HANG).expect("the server listens");
    Running {
        path,
        stop: Some(stop),
        serving: Some(serving),
    }
}

impl Running {
    pub(crate) fn stop(&mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
    }

    /// Waits for the server to return.
    pub(crate) fn stopped(&mut self) -> UnixShutdown {
        let serving = self.serving.take().expect("joined once");
        let start = Instant::now();
        while !serving.is_finished() {
            assert!(start.elapsed() < HANG, "the server is still serving");
            std::thread::sleep(Duration::from_millis(10));
        }
        serving.join().unwrap().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
