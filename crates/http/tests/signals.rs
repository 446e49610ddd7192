//! SIGTERM handling of a sticky server, in process: the test signals
//! itself, so it is the only test in this binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use vgirpc::wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc::wire::log::{ErrorInfo, LogRecord};
use vgirpc::wire::metadata;
use vgirpc::wire::request::Request as RpcRequest;
use vgirpc::{CallContext, RpcError, Server, SessionState};
use vgirpc_http::{
    DrainHandle, HttpConfig, HttpServer, ShutdownSignals, StickyConfig, Stopped, TokenKey,
};

#[vgirpc::service]
pub trait Sessions {
    /// Opens a session holding `initial`.
    fn open(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError>;
    /// Adds to the session's value.
    fn add(&self, ctx: &CallContext, by: i64) -> Result<i64, RpcError>;
}

struct Value {
    value: i64,
    closes: Arc<AtomicUsize>,
}

impl SessionState for Value {
    fn close(&mut self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

struct Impl {
    closes: Arc<AtomicUsize>,
}

impl Sessions for Impl {
    fn open(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError> {
        ctx.open_session(Value {
            value: initial,
            closes: self.closes.clone(),
        })?;
        Ok(initial)
    }
    fn add(&self, ctx: &CallContext, by: i64) -> Result<i64, RpcError> {
        let mut value = ctx
            .session::<Value>()
            .ok_or_else(|| RpcError::runtime_error("no session"))?;
        value.value += by;
        Ok(value.value)
    }
}

/// A call's result, or its error.
async fn call(
    addr: SocketAddr,
    method: &str,
    param: (&str, i64),
    token: Option<&str>,
) -> (HeaderMap, Result<i64, ErrorInfo>) {
    let schema = Arc::new(Schema::new(vec![Field::new(
        param.0,
        DataType::Int64,
        true,
    )]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![param.1]))]).unwrap();
    let body = write_stream_bytes(
        batch.schema_ref(),
        [(&batch, &RpcRequest::metadata_for(method))],
    )
    .unwrap();
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("/{method}"))
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
        .header("vgi-session-accept", "true");
    if let Some(token) = token {
        request = request.header("vgi-session", token);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let (parts, body) = sender.send_request(request).await.unwrap().into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let mut reader = StreamReader::try_open(body.as_ref(), Default::default())
        .unwrap()
        .unwrap();
    while let Some(batch) = reader.next_batch().unwrap() {
        if batch.metadata.get(metadata::LOG_LEVEL) == Some("EXCEPTION") {
            let record = LogRecord::from_metadata(&batch.metadata).unwrap();
            return (parts.headers, Err(ErrorInfo::from_log_record(&record)));
        }
        if batch.batch.num_rows() == 1 {
            let column = batch.batch.column(0);
            let value = column.as_any().downcast_ref::<Int64Array>().unwrap();
            return (parts.headers, Ok(value.value(0)));
        }
    }
    panic!("no result in the answer");
}

fn sigterm() {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the server to notice the signal; the limit only bounds a
/// failing run.
async fn until_draining(drain: &DrainHandle) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !drain.is_draining() {
        assert!(Instant::now() < deadline, "the signal was never seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Running {
    addr: SocketAddr,
    closes: Arc<AtomicUsize>,
    drain: DrainHandle,
    served: tokio::task::JoinHandle<Result<Stopped, vgirpc_http::HttpError>>,
}

async fn start(grace: Duration) -> Running {
    let closes = Arc::new(AtomicUsize::new(0));
    let server = Server::new(SessionsServer::new(Impl {
        closes: closes.clone(),
    }))
    .unwrap();
    let config = HttpConfig::new()
        .with_token_key(TokenKey::new(b"k"))
        .with_sticky(StickyConfig::new());
    let http = HttpServer::new(server, config).unwrap();
    let drain = http.drain_handle().unwrap();
    let signals = ShutdownSignals::install().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(http.serve_until_signalled(listener, signals, grace));
    Running {
        addr,
        closes,
        drain,
        served,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_serves_the_grace_period_then_stops() {
    // Long enough for the calls below, however slow the machine.
    let grace = Duration::from_secs(3);
    let server = start(grace).await;
    let (headers, opened) = call(server.addr, "open", ("initial", 10), None).await;
    assert_eq!(opened, Ok(10));
    let token = headers["vgi-session"].to_str().unwrap().to_owned();

    let signalled = Instant::now();
    sigterm();
    until_draining(&server.drain).await;
    let (_, refused) = call(server.addr, "open", ("initial", 1), None).await;
    let refused = refused.unwrap_err();
    assert_eq!(refused.error_type, "ServerDrainingError");
    assert_eq!(refused.error_kind.as_deref(), Some("server_draining"));
    let (_, added) = call(server.addr, "add", ("by", 5), Some(&token)).await;
    assert_eq!(added, Ok(15));
    assert_eq!(server.closes.load(Ordering::SeqCst), 0);

    let stopped = server.served.await.unwrap().unwrap();
    assert_eq!(stopped, Stopped::Graceful);
    assert!(signalled.elapsed() >= grace);
    // Stopping closed the session that was still open.
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);

    // A second signal during the grace period stops at once, leaving the
    // sessions as a crash would.
    let server = start(Duration::from_secs(3600)).await;
    call(server.addr, "open", ("initial", 1), None)
        .await
        .1
        .unwrap();
    sigterm();
    until_draining(&server.drain).await;
    sigterm();
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.served)
        .await
        .expect("the second signal stops the server")
        .unwrap()
        .unwrap();
    assert_eq!(stopped, Stopped::Forced);
    assert_eq!(server.closes.load(Ordering::SeqCst), 0);
}
