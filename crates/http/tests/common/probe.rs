//! The probe service and the harness around it, shared by the HTTP
//! transport tests (`unary_calls`, `refused_requests`, `compression`,
//! `streams`, `concurrency`, `dispatch_hooks`): a small service covering
//! unary calls, both stream kinds and failures, served behind a real
//! listener. The requests that drive it are in the `probe_*` modules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Float64Array, Int64Array};
use arrow_schema::{DataType, Field, Schema};
use http::{Method, Request};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vgirpc::{
    ArrowStruct, CallContext, ExchangeState, OutputCollector, ProducerState, RpcError, Server,
    Stream,
};
use vgirpc_http::{HttpConfig, HttpServer, TokenKey};

// ---------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------

/// A small service covering unary calls, both stream kinds and failures.
#[vgirpc::service]
pub(crate) trait Probe {
    /// Echo an integer.
    fn echo(&self, value: i64) -> Result<i64, RpcError>;
    /// Fail with a RuntimeError.
    fn fail(&self, message: String) -> Result<i64, RpcError>;
    /// Sleep, then answer.
    fn nap(&self, millis: i64) -> Result<i64, RpcError>;
    /// Produce `limit` one-row batches.
    fn count(&self, limit: i64) -> Result<Stream, RpcError>;
    /// Multiply every input value by `factor`.
    fn scale(&self, factor: f64) -> Result<Stream, RpcError>;
    /// A producer whose state cannot be resumed in another request.
    fn forgetful(&self) -> Result<Stream, RpcError>;
    /// `domain:principal` of the caller, after a pause (async).
    async fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError>;
}

#[derive(Debug, Default, ArrowStruct)]
struct Counter {
    limit: i64,
    next: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Counter {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.next >= self.limit {
            return out.finish();
        }
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.next]))])?;
        self.next += 1;
        Ok(())
    }
}

#[derive(Debug, ArrowStruct)]
struct Scale {
    factor: f64,
}

#[vgirpc::stream_state]
impl ExchangeState for Scale {
    fn exchange(
        &mut self,
        input: &vgirpc::AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let values = input
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| RpcError::type_error("expected float64"))?;
        let scaled: Float64Array = values.iter().map(|v| v.map(|v| v * self.factor)).collect();
        out.emit_arrays(vec![Arc::new(scaled)])
    }
}

/// Deliberately without `#[vgirpc::stream_state]`.
#[derive(Debug)]
struct Forgetful;

impl ProducerState for Forgetful {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![0]))])
    }
}

pub(crate) struct ProbeImpl;

pub(crate) fn int_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
}

pub(crate) fn float_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]))
}

impl Probe for ProbeImpl {
    fn echo(&self, value: i64) -> Result<i64, RpcError> {
        Ok(value)
    }
    async fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError> {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let auth = ctx.auth();
        Ok(format!(
            "{}:{}",
            auth.domain_or_empty(),
            auth.principal_or_empty()
        ))
    }
    fn fail(&self, message: String) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error(message))
    }
    fn nap(&self, millis: i64) -> Result<i64, RpcError> {
        std::thread::sleep(Duration::from_millis(millis as u64));
        Ok(millis)
    }
    fn count(&self, limit: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(int_schema(), Counter { limit, next: 0 }))
    }
    fn scale(&self, factor: f64) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            float_schema(),
            float_schema(),
            Scale { factor },
        ))
    }
    fn forgetful(&self) -> Result<Stream, RpcError> {
        Ok(Stream::producer(int_schema(), Forgetful))
    }
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub(crate) async fn start_with(server: Server, config: HttpConfig) -> TestServer {
    let http = HttpServer::new(server, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));
    TestServer { addr, _stop: stop }
}

pub(crate) fn keyed() -> HttpConfig {
    HttpConfig::new().with_token_key(TokenKey::new(b"test key"))
}

pub(crate) fn post(path: &str, body: Vec<u8>) -> http::request::Builder {
    let _ = body;
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
}
