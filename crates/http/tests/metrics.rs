//! The Prometheus endpoint over real HTTP: a known sequence of calls read
//! back from a scrape, the endpoint's absence when not configured, its
//! place relative to authentication, and paths it must not take.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod exception;
    pub(crate) mod header;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
    pub(crate) mod stream_token;
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use common::int_param::int;
use common::reply::Reply;
use common::request::request;
use common::send::send;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::{ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError, Server, Stream};
use vgirpc_http::{
    AuthContext, HttpConfig, HttpError, HttpServer, MetricsConfig, StickyConfig, TokenKey,
    bearer_static,
};

#[vgirpc::service]
pub trait Shop {
    /// Always answers.
    fn greet(&self, name: String) -> Result<String, RpcError>;
    /// Always fails.
    fn fail(&self) -> Result<i64, RpcError>;
    /// Emits 1..=count, one batch of 1024 rows each.
    fn count(&self, count: i64) -> Result<Stream, RpcError>;
    /// Opens a sticky session.
    fn open(&self, ctx: &CallContext) -> Result<i64, RpcError>;
}

struct ShopImpl;

struct Basket;

impl vgirpc::SessionState for Basket {}

impl Shop for ShopImpl {
    fn greet(&self, name: String) -> Result<String, RpcError> {
        Ok(format!("hello, {name}"))
    }
    fn fail(&self) -> Result<i64, RpcError> {
        Err(RpcError::value_error("out of stock"))
    }
    fn count(&self, count: i64) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        Ok(Stream::producer(schema, Counting { count, done: 0 }))
    }
    fn open(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        ctx.open_session(Basket)?;
        Ok(1)
    }
}

#[derive(Debug, Default, ArrowStruct)]
struct Counting {
    count: i64,
    done: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Counting {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.done == self.count {
            return out.finish();
        }
        self.done += 1;
        // 8 KiB a batch, beyond the tests' response cap.
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.done; 1024]))])
    }
}

fn key() -> TokenKey {
    TokenKey::new(b"metrics test key")
}

/// Serves `config` until the returned sender drops.
async fn start(config: HttpConfig) -> (SocketAddr, oneshot::Sender<()>) {
    let server = Server::new(ShopServer::new(ShopImpl)).unwrap();
    let http = HttpServer::new(server, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn post(path: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
}

async fn call(addr: SocketAddr, path: &str, body: Vec<u8>) -> Reply {
    send(addr, post(path).body(Full::new(Bytes::from(body))).unwrap()).await
}

async fn call_as(addr: SocketAddr, bearer: &str, path: &str, body: Vec<u8>) -> Reply {
    let request = post(path)
        .header("authorization", format!("Bearer {bearer}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send(addr, request).await
}

fn greeting() -> Vec<u8> {
    request(
        "greet",
        vec![("name", Arc::new(StringArray::from(vec!["ada"])))],
    )
}

/// A producer continuation carrying `token`.
fn continuation(token: &str) -> Vec<u8> {
    let tick = RecordBatch::new_empty(empty_schema());
    let md = Metadata::new().with(metadata::STREAM_STATE, token);
    write_stream_bytes(tick.schema_ref(), [(&tick, &md)]).unwrap()
}

async fn get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", "test");
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    send(addr, request.body(Full::new(Bytes::new())).unwrap()).await
}

/// The sample lines of a scrape (no `#` comments).
fn samples(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = std::str::from_utf8(reply.body()).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn has(samples: &[String], line: &str) {
    assert!(
        samples.iter().any(|s| s == line),
        "{line:?} missing from\n{}",
        samples.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_reads_back_a_known_sequence_of_calls() {
    let (addr, _stop) = start(
        HttpConfig::new()
            .with_token_key(key())
            // One producer batch per response: the stream continues over
            // requests, while the unary answers fit.
            .with_max_response_bytes(4096)
            .with_sticky(StickyConfig::new())
            .with_metrics(MetricsConfig::new()),
    )
    .await;

    let greeted = call(addr, "/greet", greeting()).await;
    assert!(greeted.error().is_none());
    let failed = call(addr, "/fail", request("fail", vec![])).await;
    assert_eq!(failed.error().unwrap().error_type, "ValueError");

    // count(3): the init answers 1, each continuation one more, and the
    // last continuation finishes without a token.
    let mut reply = call(
        addr,
        "/count/init",
        request("count", vec![("count", int(3))]),
    )
    .await;
    let mut seen = reply.ints();
    seen.dedup();
    let mut continuations = 0;
    let mut last_token = None;
    while let Some(token) = reply.stream_token() {
        reply = call(addr, "/count/exchange", continuation(&token)).await;
        seen.extend(reply.ints());
        seen.dedup();
        continuations += 1;
        last_token = Some(token);
    }
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(continuations, 3);

    // A token with one character changed fails its tag check.
    let mut tampered = last_token.unwrap().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refused = call(addr, "/count/exchange", continuation(&tampered)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let opened = send(
        addr,
        post("/open")
            .header("VGI-Session-Accept", "true")
            .body(Full::new(Bytes::from(request("open", vec![]))))
            .unwrap(),
    )
    .await;
    assert!(opened.header("vgi-session").is_some());

    let samples = samples(&get(addr, "/metrics", None).await);
    for line in [
        r#"vgi_rpc_requests_total{method="greet",method_type="unary",status="ok"} 1"#,
        r#"vgi_rpc_requests_total{method="fail",method_type="unary",status="error"} 1"#,
        // The init and three continuations; the refused token reached no method.
        r#"vgi_rpc_requests_total{method="count",method_type="stream",status="ok"} 4"#,
        r#"vgi_rpc_requests_total{method="open",method_type="unary",status="ok"} 1"#,
        r#"vgi_rpc_request_duration_seconds_count{method="greet",method_type="unary",status="ok"} 1"#,
        r#"vgi_rpc_request_duration_seconds_count{method="count",method_type="stream",status="ok"} 4"#,
        r#"vgi_rpc_request_duration_seconds_bucket{le="+Inf",method="count",method_type="stream",status="ok"} 4"#,
        "vgi_rpc_requests_in_flight 0",
        r#"vgi_rpc_stream_tokens_total{result="opened"} 3"#,
        r#"vgi_rpc_stream_tokens_total{result="verification_failed"} 1"#,
        "vgi_rpc_sessions_open 1",
    ] {
        has(&samples, line);
    }
    // Exactly the series above, and one per bucket of each histogram.
    let counters = samples
        .iter()
        .filter(|s| s.starts_with("vgi_rpc_requests_total{"))
        .count();
    assert_eq!(counters, 4, "{samples:#?}");
    let tokens = samples
        .iter()
        .filter(|s| s.starts_with("vgi_rpc_stream_tokens_total{"))
        .count();
    assert_eq!(tokens, 2, "{samples:#?}");
    let buckets = samples
        .iter()
        .filter(|s| s.starts_with("vgi_rpc_request_duration_seconds_bucket{"))
        .count();
    assert_eq!(buckets, 4 * 12, "{samples:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_counted_as_expired() {
    let (addr, _stop) = start(
        HttpConfig::new()
            .with_token_key(key())
            .with_token_ttl(1)
            .with_max_response_bytes(4096)
            .with_metrics(MetricsConfig::new()),
    )
    .await;
    let reply = call(
        addr,
        "/count/init",
        request("count", vec![("count", int(2))]),
    )
    .await;
    let token = reply.stream_token().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = call(addr, "/count/exchange", continuation(&token)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let samples = samples(&get(addr, "/metrics", None).await);
    has(
        &samples,
        r#"vgi_rpc_stream_tokens_total{result="expired"} 1"#,
    );
    // No sticky sessions, no session gauge.
    assert!(
        !samples
            .iter()
            .any(|s| s.starts_with("vgi_rpc_sessions_open"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_metrics_the_path_is_not_found() {
    let (addr, _stop) = start(HttpConfig::new().with_token_key(key())).await;
    assert!(call(addr, "/greet", greeting()).await.error().is_none());
    // A GET on a one-segment path is a GET on a method's path, refused:
    // /metrics is answered as /anything is.
    let absent = get(addr, "/metrics", None).await;
    let anything = get(addr, "/anything", None).await;
    assert_eq!(absent.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        (absent.status(), absent.header("allow"), absent.body()),
        (anything.status(), anything.header("allow"), anything.body())
    );
    let absent = get(addr, "/internal/metrics", None).await;
    assert_eq!(absent.status(), StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(absent.body()).contains("vgi_rpc_"));

    // A configured path moves the scrape; the default path is then free.
    let (addr, _stop) = start(
        HttpConfig::new()
            .with_token_key(key())
            .with_metrics(MetricsConfig::new().with_path("/internal/metrics")),
    )
    .await;
    assert_eq!(
        get(addr, "/metrics", None).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    samples(&get(addr, "/internal/metrics", None).await);
    // Other methods on the scrape path are refused, not taken for a call.
    assert_eq!(
        call(addr, "/internal/metrics", greeting()).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scrape_skips_authentication_unless_asked() {
    let auth = || {
        bearer_static([(
            "scraper-token".to_owned(),
            AuthContext::authenticated("bearer", "scraper"),
        )])
    };
    let config = || {
        HttpConfig::new()
            .with_token_key(key())
            .with_authenticate(auth())
    };

    let (addr, _stop) = start(config().with_metrics(MetricsConfig::new())).await;
    assert_eq!(
        call(addr, "/greet", greeting()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    samples(&get(addr, "/metrics", None).await);

    let (addr, _stop) =
        start(config().with_metrics(MetricsConfig::new().with_authentication(true))).await;
    assert_eq!(
        get(addr, "/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    samples(&get(addr, "/metrics", Some("scraper-token")).await);
}

#[test]
fn a_path_the_server_already_answers_is_refused() {
    for path in [
        "metrics",
        "/",
        "/health",
        "/describe",
        "/greet",
        "/vgi/greet",
    ] {
        let prefix = if path.starts_with("/vgi") { "/vgi" } else { "" };
        let server = Server::new(ShopServer::new(ShopImpl)).unwrap();
        let config = HttpConfig::new()
            .with_token_key(key())
            .with_prefix(prefix)
            .with_metrics(MetricsConfig::new().with_path(path));
        match HttpServer::new(server, config) {
            Err(HttpError::Config(message)) => assert!(message.contains("metrics path"), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_callers_token_is_refused_and_counted() {
    let auth = bearer_static([
        (
            "alice-token".to_owned(),
            AuthContext::authenticated("bearer", "alice"),
        ),
        (
            "bob-token".to_owned(),
            AuthContext::authenticated("bearer", "bob"),
        ),
    ]);
    let (addr, _stop) = start(
        HttpConfig::new()
            .with_token_key(key())
            .with_max_response_bytes(4096)
            .with_authenticate(auth)
            .with_metrics(MetricsConfig::new()),
    )
    .await;
    let body = request("count", vec![("count", int(2))]);
    let token = call_as(addr, "alice-token", "/count/init", body)
        .await
        .stream_token()
        .unwrap();
    let stolen = call_as(addr, "bob-token", "/count/exchange", continuation(&token)).await;
    assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
    let samples = samples(&get(addr, "/metrics", None).await);
    has(
        &samples,
        r#"vgi_rpc_stream_tokens_total{result="verification_failed"} 1"#,
    );
    assert!(
        !samples.iter().any(|s| s.contains(r#"result="opened""#)),
        "{samples:#?}"
    );
}
