//! The HTTP transport end to end: a test service behind a real listener,
//! driven by raw HTTP requests carrying Arrow IPC bodies.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use common::{Reply, int, request, send};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::{
    ArrowStruct, CallContext, CallRecord, DispatchHook, ExchangeState, OutputCollector,
    ProducerState, RpcError, Server, Stream,
};
use vgirpc_http::{AuthContext, HttpConfig, HttpServer, TokenKey, bearer_static};

// ---------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------

/// A small service covering unary calls, both stream kinds and failures.
#[vgirpc::service]
pub trait Probe {
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

struct ProbeImpl;

fn int_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
}

fn float_schema() -> Arc<Schema> {
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

struct TestServer {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(config: HttpConfig) -> TestServer {
    start_with(Server::new(ProbeServer::new(ProbeImpl)).unwrap(), config).await
}

async fn start_with(server: Server, config: HttpConfig) -> TestServer {
    let http = HttpServer::new(server, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));
    TestServer { addr, _stop: stop }
}

fn keyed() -> HttpConfig {
    HttpConfig::new().with_token_key(TokenKey::new(b"test key"))
}

/// A one-byte response cap: every producer turn ends after its first
/// batch, with a continuation token.
fn turn_by_turn() -> HttpConfig {
    keyed().with_max_response_bytes(1)
}

fn post(path: &str, body: Vec<u8>) -> http::request::Builder {
    let _ = body;
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
}

async fn call(addr: SocketAddr, path: &str, body: Vec<u8>) -> Reply {
    send(
        addr,
        post(path, body.clone())
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}

/// An exchange or continuation request carrying `token`.
fn turn(token: &str, batch: RecordBatch, extra: Metadata) -> Vec<u8> {
    let mut md = extra;
    md.insert(metadata::STREAM_STATE, token);
    write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap()
}

fn tick() -> RecordBatch {
    RecordBatch::new_empty(empty_schema())
}

// ---------------------------------------------------------------------------
// Unary calls and status codes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn unary_call_round_trips_with_capability_headers() {
    let server = start(keyed().with_max_request_bytes(1 << 20)).await;
    let reply = call(
        server.addr,
        "/echo",
        request("echo", vec![("value", int(42))]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some(vgirpc_http::ARROW_STREAM)
    );
    assert_eq!(reply.header("vgi-max-request-bytes"), Some("1048576"));
    assert_eq!(reply.header("vgi-externalization-enabled"), Some("false"));
    assert_eq!(reply.header("x-request-id").map(str::len), Some(16));
    let result = reply.batches().pop().unwrap();
    let values = result
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(values.value(0), 42);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_echoed() {
    let server = start(keyed()).await;
    let body = request("echo", vec![("value", int(1))]);
    let reply = send(
        server.addr,
        post("/echo", body.clone())
            .header("x-request-id", "abc123")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.header("x-request-id"), Some("abc123"));
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_are_400() {
    let server = start(keyed()).await;
    // No request version.
    let batch = RecordBatch::try_new(int_schema(), vec![int(1)]).unwrap();
    let md = Metadata::new().with(metadata::METHOD, "echo");
    let body = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
    let reply = call(server.addr, "/echo", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").error_type,
        "VersionError"
    );

    // The URL names another method than the batch.
    let reply = call(server.addr, "/echo", request("fail", vec![])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .expect("an error batch")
            .message
            .contains("Method name mismatch"),
        "{:?}",
        reply.error().expect("an error batch")
    );

    // A stream method on the unary endpoint.
    let reply = call(
        server.addr,
        "/count",
        request("count", vec![("limit", int(1))]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .expect("an error batch")
            .message
            .contains("requires /init and /exchange")
    );

    // Not Arrow IPC at all.
    let reply = call(server.addr, "/echo", b"definitely not arrow".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").error_type,
        "ArrowInvalid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_methods_and_paths_are_404() {
    let server = start(keyed()).await;
    let reply = call(server.addr, "/nope", request("nope", vec![])).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let error = reply.error().expect("an error batch");
    assert_eq!(error.error_type, "MethodNotImplementedError");
    assert!(error.message.contains("'echo'"), "{}", error.message);

    let reply = call(server.addr, "/a/b/c", Vec::new()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // Even a 404 carries the capability headers.
    assert_eq!(reply.header("vgi-supported-encodings"), Some("zstd"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_media_types_are_415() {
    let server = start(keyed()).await;
    let body = request("echo", vec![("value", int(1))]);
    let reply = send(
        server.addr,
        Request::post("/echo")
            .header("host", "test")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply
            .error()
            .expect("an error batch")
            .message
            .contains("Expected Content-Type")
    );

    let reply = send(
        server.addr,
        post("/echo", body.clone())
            .header("content-encoding", "br")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread")]
async fn method_failures_travel_as_200_with_the_error_header() {
    let server = start(keyed()).await;
    let body = request(
        "fail",
        vec![(
            "message",
            Arc::new(arrow_array::StringArray::from(vec!["boom"])),
        )],
    );
    let reply = call(server.addr, "/fail", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-vgi-rpc-error"), Some("true"));
    let error = reply.error().expect("an error batch");
    assert_eq!(
        (error.error_type.as_str(), error.message.as_str()),
        ("RuntimeError", "boom")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_refuses_with_plain_text_401_but_not_health() {
    let tokens = [(
        "s3cret".to_owned(),
        AuthContext::authenticated("bearer", "alice"),
    )];
    let server = start(keyed().with_authenticate(bearer_static(tokens))).await;
    let body = request("echo", vec![("value", int(7))]);

    let reply = call(server.addr, "/echo", body.clone()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(String::from_utf8_lossy(&reply.body).contains("Authorization"));

    let health = send(
        server.addr,
        Request::get("/health")
            .header("host", "test")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["protocol"], "Probe");

    let reply = send(
        server.addr,
        post("/echo", body.clone())
            .header("authorization", "Bearer s3cret")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.ints(), [7]);

    // The method sees who called it.
    let body = request("whoami", vec![]);
    let reply = send(
        server.addr,
        post("/whoami", body.clone())
            .header("authorization", "Bearer s3cret")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer = reply.batches();
    let column = answer.last().unwrap().batch.column(0);
    let text = column
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "bearer:alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_413_and_the_server_keeps_serving() {
    let server = start(keyed().with_max_request_bytes(1024)).await;
    let big = request(
        "fail",
        vec![(
            "message",
            Arc::new(arrow_array::StringArray::from(vec!["x".repeat(4096)])),
        )],
    );
    let reply = call(server.addr, "/fail", big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8_lossy(&reply.body).contains("max_request_bytes=1024"));

    // Chunked, so the size is only discovered while reading.
    let chunks = Chunked(vec![Bytes::from(vec![0u8; 700]), Bytes::from(vec![0u8; 700])].into());
    let reply = send(server.addr, post("/echo", Vec::new()).body(chunks).unwrap()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let reply = call(
        server.addr,
        "/echo",
        request("echo", vec![("value", int(3))]),
    )
    .await;
    assert_eq!(reply.ints(), [3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_bodies_are_refused_and_the_server_keeps_serving() {
    let server = start(keyed()).await;
    let body = request("echo", vec![("value", int(5))]);

    // A well-framed HTTP body holding a cut-off IPC stream.
    let reply = call(server.addr, "/echo", body[..body.len() - 12].to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .expect("an error batch")
            .message
            .contains("truncated"),
        "{}",
        reply.error().expect("an error batch").message
    );

    // A client that promises more bytes than it sends, then hangs up.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST /echo HTTP/1.1\r\nhost: test\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
            vgirpc_http::ARROW_STREAM,
            body.len() + 100
        );
        raw.write_all(head.as_bytes()).await.unwrap();
        raw.write_all(&body).await.unwrap();
        raw.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{answer}"
        );
    }

    let reply = call(server.addr, "/echo", body).await;
    assert_eq!(reply.ints(), [5]);
}

// ---------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn zstd_bodies_both_ways() {
    let server = start(keyed()).await;
    let compressed_request = |limit| {
        let body = request("count", vec![("limit", int(limit))]);
        post("/count/init", Vec::new())
            .header("content-encoding", "zstd")
            .header("accept-encoding", "zstd, gzip")
            .body(Full::new(Bytes::from(
                zstd::bulk::compress(&body, 3).unwrap(),
            )))
            .unwrap()
    };

    // Two hundred batches of one row: a response that zstd pays for.
    let reply = send(server.addr, compressed_request(200)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-encoding"), Some("zstd"));
    let size = zstd::zstd_safe::get_frame_content_size(&reply.body).unwrap();
    let plain = zstd::decode_all(&reply.body[..]).unwrap();
    assert_eq!(
        size,
        Some(plain.len() as u64),
        "the frame records the body size"
    );
    assert!(plain.len() > reply.body.len());
    let reply = Reply {
        body: Bytes::from(plain),
        ..reply
    };
    let ints = reply.ints();
    assert!(!ints.is_empty());
    assert!(ints.iter().copied().eq(0..ints.len() as i64), "{ints:?}");

    // A small response is sent as it is, though the client accepts zstd:
    // compressing it would cost both sides more than its bytes.
    let reply = send(server.addr, compressed_request(1)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("vary"), Some("accept-encoding"));
    assert_eq!(reply.ints(), [0]);

    let reply = send(
        server.addr,
        post("/echo", Vec::new())
            .header("content-encoding", "zstd")
            .body(Full::new(Bytes::from_static(b"not a zstd frame")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------
// Streams and tokens
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn producers_continue_with_tokens_on_any_worker_sharing_the_key() {
    let a = start(turn_by_turn()).await;
    let b = start(turn_by_turn()).await;
    let mut reply = call(
        a.addr,
        "/count/init",
        request("count", vec![("limit", int(3))]),
    )
    .await;
    let mut seen = reply.ints();
    let mut servers = [b.addr, a.addr].into_iter().cycle();
    while let Some(token) = reply.stream_token() {
        let next = servers.next().unwrap();
        reply = call(
            next,
            "/count/exchange",
            turn(&token, tick(), Metadata::new()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        seen.extend(reply.ints());
    }
    assert_eq!(seen, [0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cap_a_short_producer_arrives_in_one_response() {
    let server = start(keyed()).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(500))]),
    )
    .await;
    assert_eq!(reply.ints(), (0..500).collect::<Vec<_>>());
    assert_eq!(reply.stream_token(), None, "no continuation was needed");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cap_an_endless_producer_still_hands_out_a_token() {
    let server = start(keyed()).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(i64::MAX))]),
    )
    .await;
    let ints = reply.ints();
    assert!(!ints.is_empty());
    assert_eq!(ints, (0..ints.len() as i64).collect::<Vec<_>>());
    assert!(
        reply.stream_token().is_some(),
        "the turn ended with a token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn producers_fill_the_body_up_to_the_cap_before_handing_out_a_token() {
    let server = start(keyed().with_max_response_bytes(1 << 20)).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(50))]),
    )
    .await;
    assert_eq!(reply.ints(), (0..50).collect::<Vec<_>>());
    assert_eq!(
        reply.stream_token(),
        None,
        "the stream finished inside one response"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exchanges_carry_a_fresh_token_on_every_output() {
    let server = start(keyed()).await;
    let reply = call(
        server.addr,
        "/scale/init",
        request(
            "scale",
            vec![("factor", Arc::new(Float64Array::from(vec![2.0])))],
        ),
    )
    .await;
    let mut token = reply
        .stream_token()
        .expect("exchange init hands out a token");
    for round in 1..=3 {
        let input = RecordBatch::try_new(
            float_schema(),
            vec![Arc::new(Float64Array::from(vec![f64::from(round)]))],
        )
        .unwrap();
        let reply = call(
            server.addr,
            "/scale/exchange",
            turn(&token, input, Metadata::new()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        let output = reply.batches().pop().unwrap();
        let values = output
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(values.value(0), 2.0 * f64::from(round));
        token = output
            .metadata
            .get(metadata::STREAM_STATE)
            .unwrap()
            .to_owned();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_and_tampered_tokens_are_400() {
    let ours = start(turn_by_turn()).await;
    let theirs = start(
        HttpConfig::new()
            .with_token_key(TokenKey::new(b"other key"))
            .with_max_response_bytes(1),
    )
    .await;
    let reply = call(
        theirs.addr,
        "/count/init",
        request("count", vec![("limit", int(5))]),
    )
    .await;
    let token = reply.stream_token().unwrap();

    let reply = call(
        ours.addr,
        "/count/exchange",
        turn(&token, tick(), Metadata::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").message,
        "State token signature verification failed"
    );

    let reply = call(
        ours.addr,
        "/count/exchange",
        turn("@@@", tick(), Metadata::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").message,
        "Malformed state token"
    );

    let body = write_stream_bytes(&empty_schema(), [(&tick(), &Metadata::new())]).unwrap();
    let reply = call(ours.addr, "/count/exchange", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").message,
        "Missing state token in exchange request"
    );

    // A token minted for one method does not resume another.
    let reply = call(
        theirs.addr,
        "/scale/exchange",
        turn(&token, tick(), Metadata::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .error()
            .expect("an error batch")
            .message
            .contains("belongs to method"),
        "{}",
        reply.error().expect("an error batch").message
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_ends_the_stream_with_an_empty_answer() {
    let server = start(turn_by_turn()).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(9))]),
    )
    .await;
    let token = reply.stream_token().unwrap();
    let cancel = Metadata::new().with(metadata::CANCEL, "1");
    let reply = call(server.addr, "/count/exchange", turn(&token, tick(), cancel)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.batches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn states_without_stream_state_fail_clearly_over_http() {
    let server = start(turn_by_turn()).await;
    let reply = call(server.addr, "/forgetful/init", request("forgetful", vec![])).await;
    // The first batch is produced; handing out the token is what fails.
    assert_eq!(reply.ints(), [0]);
    let error = reply.error().expect("an error batch");
    assert!(
        error.message.contains("#[vgirpc::stream_state]"),
        "{}",
        error.message
    );
    assert!(error.message.contains("Forgetful"), "{}", error.message);
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_methods_run_in_parallel_without_stalling_the_reactor() {
    let server = start(keyed()).await;
    let started = Instant::now();
    let naps: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                call(addr, "/nap", request("nap", vec![("millis", int(300))])).await
            })
        })
        .collect();
    // While every worker thread's request sleeps, the server still answers.
    let probe_started = Instant::now();
    let health = send(
        server.addr,
        Request::get("/health")
            .header("host", "test")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(probe_started.elapsed() < Duration::from_millis(250));
    for nap in naps {
        assert_eq!(nap.await.unwrap().ints(), [300]);
    }
    // Sixteen 300 ms calls on two reactor threads: parallel, not serial.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Bodies without a declared length
// ---------------------------------------------------------------------------

/// A body sent in chunks, so the server learns its size only by reading it.
struct Chunked(std::collections::VecDeque<Bytes>);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

// ---------------------------------------------------------------------------
// Dispatch hooks
// ---------------------------------------------------------------------------

/// Collects every record the server hands to its hooks.
#[derive(Clone, Default)]
struct Records(Arc<std::sync::Mutex<Vec<CallRecord>>>);

impl DispatchHook for Records {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_and_stream_turn_reaches_the_hooks() {
    let server = Server::new(ProbeServer::new(ProbeImpl)).unwrap();
    let records = Records::default();
    server.add_hook(records.clone());
    let tokens = [(
        "t".to_owned(),
        AuthContext::authenticated("bearer", "alice"),
    )];
    let server = start_with(
        server,
        turn_by_turn().with_authenticate(bearer_static(tokens)),
    )
    .await;
    let authorized = |path: &str, body: Vec<u8>| {
        post(path, body.clone())
            .header("authorization", "Bearer t")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };

    let body = request(
        "fail",
        vec![(
            "message",
            Arc::new(arrow_array::StringArray::from(vec!["no"])),
        )],
    );
    send(server.addr, authorized("/fail", body)).await;
    let reply = send(
        server.addr,
        authorized("/count/init", request("count", vec![("limit", int(1))])),
    )
    .await;
    let token = reply.stream_token().unwrap();
    send(
        server.addr,
        authorized("/count/exchange", turn(&token, tick(), Metadata::new())),
    )
    .await;

    let records = records.0.lock().unwrap().clone();
    assert_eq!(records.len(), 3, "{records:#?}");
    let (fail, init, last) = (&records[0], &records[1], &records[2]);
    assert_eq!(
        fail.http_status,
        Some(500),
        "logged as the reference logs it"
    );
    assert!(fail.is_error());
    assert_eq!(fail.auth.principal.as_deref(), Some("alice"));
    assert!(fail.remote_addr.starts_with("127.0.0.1:"));
    assert_eq!(init.method, "count");
    assert!(init.response_state.is_some());
    assert!(init.request_state.is_none());
    assert_eq!(init.stream_id, last.stream_id);
    assert_eq!(init.stream_id.as_ref().map(String::len), Some(32));
    assert_eq!(last.request_state, init.response_state);
    assert!(last.response_state.is_none(), "the stream finished");
    assert_eq!(last.http_status, Some(200));
}
