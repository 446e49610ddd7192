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
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::{Array as _, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vgirpc_wire::classify::{BatchKind, classify};
use vgirpc_wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc_wire::request::Request as RpcRequest;

use crate::callers::{self, Caller, LoadPlan};
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

/// One HTTP/1.1 connection, or one stream of an HTTP/2 connection,
/// calling `echo_string` with the template's request.
struct Echo<S, F> {
    sender: S,
    /// `S::poll_ready` and `S::send_request`: hyper's senders of the two
    /// versions both have them, but no trait to reach them through.
    poll_ready: fn(&mut S, &mut Context<'_>) -> Poll<hyper::Result<()>>,
    send_request: fn(&mut S, Request<Full<Bytes>>) -> F,
    template: Arc<Template>,
}

impl<S, F> Caller for Echo<S, F>
where
    S: Send + 'static,
    F: Future<Output = hyper::Result<Response<Incoming>>> + Send + 'static,
{
    async fn call(&mut self) -> Result<Duration> {
        let poll_ready = self.poll_ready;
        std::future::poll_fn(|cx| poll_ready(&mut self.sender, cx))
            .await
            .context("the connection closed")?;
        let start = Instant::now();
        let response = (self.send_request)(&mut self.sender, self.template.request())
            .await
            .with_context(|| format!("{METHOD}() request"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the {METHOD}() reply"))?
            .to_bytes();
        let latency = start.elapsed();
        check_reply(status, &body, TEXT)?;
        Ok(latency)
    }
}

/// `connections` HTTP/1.1 connections to `address`, each a caller.
async fn http1_callers(
    address: SocketAddr,
    connections: usize,
    tls: Option<&TlsConnector>,
    template: &Arc<Template>,
) -> Result<Vec<impl Caller>> {
    let mut callers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = connect(address, tls).await?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // Dropping the caller's sender closes the connection and ends this.
        tokio::spawn(driver);
        callers.push(Echo {
            sender,
            poll_ready: http1::SendRequest::poll_ready,
            send_request: http1::SendRequest::send_request,
            template: Arc::clone(template),
        });
    }
    Ok(callers)
}

/// One plain-text HTTP/2 connection to `address`, `streams` callers on it.
async fn http2_callers(
    address: SocketAddr,
    streams: usize,
    template: &Arc<Template>,
) -> Result<Vec<impl Caller>> {
    let io = connect(address, None).await?;
    let (sender, driver) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(driver);
    Ok((0..streams)
        .map(|_| Echo {
            sender: sender.clone(),
            poll_ready: http2::SendRequest::poll_ready,
            send_request: http2::SendRequest::send_request,
            template: Arc::clone(template),
        })
        .collect())
}

/// One run of `mode` against the server at `address` (process `pid`),
/// warmed up, then measured for `plan.duration`.
async fn load_run(address: SocketAddr, pid: u32, mode: Mode, plan: LoadPlan) -> Result<Run> {
    let template = Arc::new(Template::new(address, &mode)?);
    match mode {
        Mode::Http1 { connections, tls } => {
            let callers = http1_callers(address, connections, tls.as_ref(), &template).await?;
            callers::run(callers, pid, plan).await
        }
        Mode::Http2 { streams } => {
            let callers = http2_callers(address, streams, &template).await?;
            callers::run(callers, pid, plan).await
        }
    }
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
                let (mut sender, driver) = http1::handshake(TokioIo::new(io))
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
                user_cpu_s: None,
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
