//! HTTP server-only load: many keep-alive connections calling `echo_string`
//! back to back, to see how far each server goes when the client is not
//! the limit.
//!
//! The sequential workloads pay our full client per call (Arrow encoding,
//! zstd, a one-thread runtime), which caps their rate well below what a
//! fast server can answer. Here the request body is encoded once and sent
//! as the same bytes every time, uncompressed and without asking for
//! compression, over plain hyper HTTP/1.1 connections on a multi-thread
//! runtime; each reply is still decoded and its echo compared. The
//! generator's own CPU use is reported with the results, so a reader can
//! tell whether it, not the server, was saturated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::{Array as _, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vgirpc_wire::classify::{BatchKind, classify};
use vgirpc_wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc_wire::request::Request as RpcRequest;

use crate::procstat::cpu_seconds;
use crate::workloads::{Metric, Run};

/// The method every request calls.
const METHOD: &str = "echo_string";

/// What every request echoes: as long as the sequential echo_string's.
pub(crate) const TEXT: &str = "hello, vgi-rpc bench";

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The connection counts measured, with their workload names.
pub(crate) const LEVELS: [(usize, &str); 3] =
    [(1, "http_load_1"), (8, "http_load_8"), (64, "http_load_64")];

/// The numbers reported per connection count, the headline first.
pub(crate) const METRICS: &[Metric] = &[
    Metric::OpsPerSec,
    Metric::P50Us,
    Metric::P99Us,
    Metric::CpuUsPerOp,
    Metric::GeneratorCores,
];

/// Longest a run may take past its end for in-flight requests to finish.
const STRAGGLER_GRACE: Duration = Duration::from_secs(30);

/// How long each load run lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadPlan {
    /// Unmeasured load on fresh connections before each run.
    pub(crate) warmup: Duration,
    /// The measured window.
    pub(crate) duration: Duration,
}

/// The one request all connections send, built once.
#[derive(Debug, Clone)]
struct Template {
    uri: Uri,
    host: HeaderValue,
    body: Bytes,
}

impl Template {
    fn new(address: SocketAddr, mode: &Mode) -> Result<Self> {
        // HTTP/2 carries scheme and authority in the request itself.
        let uri = match mode {
            Mode::Http2 { .. } => format!("http://{address}/{METHOD}"),
            Mode::Http1 { .. } => format!("/{METHOD}"),
        };
        Ok(Self {
            uri: Uri::try_from(uri)?,
            host: HeaderValue::from_str(&address.to_string())?,
            body: Bytes::from(request_body(TEXT)?),
        })
    }

    /// Headers and bytes are reference-counted, so each request costs no
    /// encoding and no copy of the body.
    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let absolute = request.uri().authority().is_some();
        let headers = request.headers_mut();
        if !absolute {
            headers.insert(HOST, self.host.clone());
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
        request
    }
}

/// How the load reaches the server.
#[derive(Clone)]
pub(crate) enum Mode {
    /// `connections` HTTP/1.1 keep-alive connections, over TLS when a
    /// connector is given.
    Http1 {
        connections: usize,
        tls: Option<TlsConnector>,
    },
    /// One HTTP/2 connection in plain text (h2c with prior knowledge),
    /// `streams` requests in flight on it at once.
    Http2 { streams: usize },
}

/// Connects to `address`, through TLS when `tls` is given.
async fn connect(address: SocketAddr, tls: Option<&TlsConnector>) -> Result<Box<dyn Io>> {
    let stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    match tls {
        None => Ok(Box::new(stream)),
        Some(connector) => {
            let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
            let stream = connector
                .connect(name, stream)
                .await
                .context("TLS handshake")?;
            Ok(Box::new(stream))
        }
    }
}

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The body every load request sends, for generators of other makes.
pub(crate) fn echo_body() -> Result<Vec<u8>> {
    request_body(TEXT)
}

/// The body our client sends for a unary `echo_string(text)`: one IPC
/// stream holding the parameters, the method named in its metadata.
fn request_body(text: &str) -> Result<Vec<u8>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let params = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![text]))])?;
    Ok(write_stream_bytes(
        params.schema_ref(),
        [(&params, &RpcRequest::metadata_for(METHOD))],
    )?)
}

/// Fails unless `body` is a 200 reply whose one result is `want`.
fn check_reply(status: StatusCode, body: &[u8], want: &str) -> Result<()> {
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
        bail!("{METHOD}() answered HTTP {status}: {text}");
    }
    let mut reader = StreamReader::open(body).context("the reply is not an Arrow stream")?;
    let reply = reader
        .next_batch()
        .context("cannot decode the reply batch")?
        .context("the reply holds no batch")?;
    if let BatchKind::Error(info) = classify(&reply.batch, &reply.metadata) {
        bail!(
            "{METHOD}() failed on the server: {}: {}",
            info.error_type,
            info.message
        );
    }
    let got = reply
        .batch
        .column_by_name("result")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .filter(|c| c.len() == 1)
        .with_context(|| format!("the reply is not one utf8 result: {:?}", reply.batch))?
        .value(0);
    ensure!(got == want, "{METHOD}() returned {got:?}, not {want:?}");
    Ok(())
}

/// What the connections are told to do.
const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// What one connection saw in the measured window.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    latencies_us: Vec<f64>,
}

/// One connection: requests back to back until told to stop; replies
/// completed while measuring are counted.
async fn connection(
    address: SocketAddr,
    tls: Option<TlsConnector>,
    template: Arc<Template>,
    phase: Arc<AtomicU8>,
) -> Result<Tally> {
    let stream = connect(address, tls.as_ref()).await?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    // Dropping the sender at the end closes the connection and ends this.
    tokio::spawn(driver);
    requests_until_stopped(&mut sender, &template, &phase).await
}

/// One stream of an HTTP/2 connection: requests back to back on `sender`
/// until told to stop, counted as [`connection`] counts them.
async fn stream(
    mut sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    template: Arc<Template>,
    phase: Arc<AtomicU8>,
) -> Result<Tally> {
    requests_until_stopped(&mut sender, &template, &phase).await
}

/// hyper's request senders of either HTTP version.
trait Sender {
    fn ready(&mut self) -> impl Future<Output = hyper::Result<()>> + Send;
    fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send;
}

impl Sender for hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    fn ready(&mut self) -> impl Future<Output = hyper::Result<()>> + Send {
        std::future::poll_fn(|cx| self.poll_ready(cx))
    }

    fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send {
        self.send_request(request)
    }
}

impl Sender for hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    fn ready(&mut self) -> impl Future<Output = hyper::Result<()>> + Send {
        std::future::poll_fn(|cx| self.poll_ready(cx))
    }

    fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send {
        self.send_request(request)
    }
}

/// `echo_string` calls back to back on `sender` until `phase` says stop;
/// replies completed while measuring are counted, and every one checked.
async fn requests_until_stopped(
    sender: &mut impl Sender,
    template: &Template,
    phase: &AtomicU8,
) -> Result<Tally> {
    let mut tally = Tally::default();
    while phase.load(Ordering::Relaxed) != STOPPING {
        sender.ready().await.context("the connection closed")?;
        let start = Instant::now();
        let response = sender
            .send(template.request())
            .await
            .with_context(|| format!("{METHOD}() request"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the {METHOD}() reply"))?
            .to_bytes();
        let elapsed = start.elapsed();
        check_reply(status, &body, TEXT)?;
        if phase.load(Ordering::Relaxed) == MEASURING {
            tally.requests += 1;
            tally.latencies_us.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    Ok(tally)
}

/// The tasks that keep `mode`'s requests going.
async fn start_load(
    address: SocketAddr,
    mode: &Mode,
    template: &Arc<Template>,
    phase: &Arc<AtomicU8>,
) -> Result<Vec<tokio::task::JoinHandle<Result<Tally>>>> {
    Ok(match mode {
        Mode::Http1 { connections, tls } => (0..*connections)
            .map(|_| {
                tokio::spawn(connection(
                    address,
                    tls.clone(),
                    template.clone(),
                    phase.clone(),
                ))
            })
            .collect(),
        Mode::Http2 { streams } => {
            let io = connect(address, None).await?;
            let (sender, driver) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                    .await
                    .context("HTTP/2 handshake")?;
            tokio::spawn(driver);
            (0..*streams)
                .map(|_| tokio::spawn(stream(sender.clone(), template.clone(), phase.clone())))
                .collect()
        }
    })
}

/// One run of `mode` against the server at `address` (process `pid`),
/// warmed up, then measured for `plan.duration`.
async fn load_run(address: SocketAddr, pid: u32, mode: Mode, plan: LoadPlan) -> Result<Run> {
    let template = Arc::new(Template::new(address, &mode)?);
    let phase = Arc::new(AtomicU8::new(WARMING));
    let tasks = start_load(address, &mode, &template, &phase).await?;
    let connections = tasks.len();
    tokio::time::sleep(plan.warmup).await;
    let generator = std::process::id();
    let generator_before = cpu_seconds(generator).ok();
    let server_before = cpu_seconds(pid).ok();
    let start = Instant::now();
    phase.store(MEASURING, Ordering::Relaxed);
    tokio::time::sleep(plan.duration).await;
    phase.store(STOPPING, Ordering::Relaxed);
    let wall_s = start.elapsed().as_secs_f64();
    let server_after = cpu_seconds(pid).ok();
    let generator_after = cpu_seconds(generator).ok();

    let mut run = Run {
        ops: 0,
        wall_s,
        cpu_s: server_before.zip(server_after).map(|(b, a)| a - b),
        client_cpu_s: generator_before.zip(generator_after).map(|(b, a)| a - b),
        http_requests: None,
        bytes: 0,
        latencies_us: Vec::new(),
    };
    let finished = tokio::time::timeout(STRAGGLER_GRACE, join_all(tasks))
        .await
        .with_context(|| format!("requests still unanswered {STRAGGLER_GRACE:?} after the run"))?;
    for (index, tally) in finished.into_iter().enumerate() {
        let tally = tally
            .context("a connection task panicked")?
            .with_context(|| format!("connection {index} of {connections}"))?;
        run.ops += tally.requests;
        run.latencies_us.extend(tally.latencies_us);
    }
    ensure!(run.ops > 0, "no request was answered in {wall_s:.2} s");
    Ok(run)
}

/// Awaits every task in turn: they run concurrently, so the order costs
/// nothing.
async fn join_all<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await);
    }
    results
}

/// Runs the load generator for one measurement.
#[derive(Debug)]
pub(crate) struct Generator {
    runtime: tokio::runtime::Runtime,
    plan: LoadPlan,
}

impl Generator {
    pub(crate) fn new(plan: LoadPlan) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the load generator's runtime")?;
        Ok(Self { runtime, plan })
    }

    /// One measured run of `connections` plain HTTP/1.1 connections
    /// against the HTTP worker at `address`, process `pid`.
    pub(crate) fn run(&self, address: SocketAddr, pid: u32, connections: usize) -> Result<Run> {
        let mode = Mode::Http1 {
            connections,
            tls: None,
        };
        self.run_mode(address, pid, mode)
    }

    /// One measured run of `mode` against the worker at `address`.
    pub(crate) fn run_mode(&self, address: SocketAddr, pid: u32, mode: Mode) -> Result<Run> {
        self.runtime
            .block_on(load_run(address, pid, mode, self.plan))
    }

    /// `count` times in turn: a new TLS connection to `address`, its
    /// handshake and one `echo_string` answered; the time of each.
    pub(crate) fn handshakes(
        &self,
        address: SocketAddr,
        pid: u32,
        tls: &TlsConnector,
        count: usize,
    ) -> Result<Run> {
        self.runtime.block_on(async {
            let mode = Mode::Http1 {
                connections: 1,
                tls: Some(tls.clone()),
            };
            let template = Template::new(address, &mode)?;
            let server_before = cpu_seconds(pid).ok();
            let start = Instant::now();
            let mut latencies_us = Vec::with_capacity(count);
            for _ in 0..count {
                let began = Instant::now();
                let io = connect(address, Some(tls)).await?;
                let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                    .await
                    .context("HTTP/1.1 handshake")?;
                tokio::spawn(driver);
                let response = sender.send_request(template.request()).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                check_reply(status, &body, TEXT)?;
                latencies_us.push(began.elapsed().as_secs_f64() * 1e6);
            }
            let wall_s = start.elapsed().as_secs_f64();
            let server_after = cpu_seconds(pid).ok();
            Ok(Run {
                ops: count as u64,
                wall_s,
                cpu_s: server_before.zip(server_after).map(|(b, a)| a - b),
                client_cpu_s: None,
                http_requests: None,
                bytes: 0,
                latencies_us,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vgirpc_wire::log::ErrorInfo;
    use vgirpc_wire::metadata::{self, Metadata};

    fn reply(text: &str) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "result",
            DataType::Utf8,
            false,
        )]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![text]))]).unwrap();
        write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap()
    }

    #[test]
    fn request_body_is_a_unary_call() {
        let (_, batches) =
            vgirpc_wire::ipc::read_stream_bytes(&request_body(TEXT).unwrap()).unwrap();
        let [call] = batches.as_slice() else {
            panic!("{} batches", batches.len());
        };
        assert_eq!(call.metadata.get(metadata::METHOD), Some(METHOD));
        let value = call.batch.column_by_name("value").unwrap();
        let value = value.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(value.value(0), TEXT);
    }

    #[test]
    fn replies_are_checked() {
        assert!(check_reply(StatusCode::OK, &reply(TEXT), TEXT).is_ok());
        let wrong = check_reply(StatusCode::OK, &reply("hello"), TEXT).unwrap_err();
        assert!(
            wrong.to_string().contains("not \"hello, vgi-rpc bench\""),
            "{wrong}"
        );
        assert!(check_reply(StatusCode::INTERNAL_SERVER_ERROR, &reply(TEXT), TEXT).is_err());
        assert!(check_reply(StatusCode::OK, b"not arrow", TEXT).is_err());

        let error = ErrorInfo::new("ValueError", "boom")
            .to_log_record()
            .to_metadata();
        let schema = vgirpc_wire::ipc::empty_schema();
        let batch = vgirpc_wire::log::empty_batch(&schema);
        let body = write_stream_bytes(&schema, [(&batch, &error)]).unwrap();
        let failed = check_reply(StatusCode::OK, &body, TEXT).unwrap_err();
        assert!(failed.to_string().contains("ValueError: boom"), "{failed}");
    }
}
