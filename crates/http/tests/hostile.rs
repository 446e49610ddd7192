//! Hostile and failing peers: zstd bombs, bodies and heads that stop
//! arriving, idle and surplus connections, and a shutdown with a call in
//! flight. Timeouts are configured short; the waits in the tests only bound
//! a failing run.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod errors;
    pub(crate) mod exception;
    pub(crate) mod header;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::errors::assert_error_contains;
use common::int_param::int;
use common::reply::Reply;
use common::request::request;
use common::send::send;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use vgirpc::{RpcError, Server};
use vgirpc_http::{HttpConfig, HttpServer, TokenKey};

/// The longest any step may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(30);

/// A timeout short enough for a test, long enough for a slow machine to
/// get a valid request through.
const SHORT: Duration = Duration::from_millis(300);

#[vgirpc::service]
pub trait Steady {
    /// Echo an integer.
    fn echo(&self, value: i64) -> Result<i64, RpcError>;
    /// Say it started, sleep `millis`, then answer them.
    fn hold(&self, millis: i64) -> Result<i64, RpcError>;
    /// Panic with `value` in the message.
    fn explode(&self, value: i64) -> Result<i64, RpcError>;
}

struct SteadyImpl {
    entered: Arc<Notify>,
}

impl Steady for SteadyImpl {
    fn echo(&self, value: i64) -> Result<i64, RpcError> {
        Ok(value)
    }
    fn hold(&self, millis: i64) -> Result<i64, RpcError> {
        self.entered.notify_one();
        std::thread::sleep(Duration::from_millis(millis as u64));
        Ok(millis)
    }
    fn explode(&self, value: i64) -> Result<i64, RpcError> {
        panic!("exploded with {value}");
    }
}

struct Running {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

fn http_server(config: HttpConfig) -> (HttpServer, Arc<Notify>) {
    let entered = Arc::new(Notify::new());
    let server = Server::new(SteadyServer::new(SteadyImpl {
        entered: entered.clone(),
    }))
    .unwrap();
    let config = config.with_token_key(TokenKey::new(b"hostile"));
    (HttpServer::new(server, config).unwrap(), entered)
}

async fn start(config: HttpConfig) -> Running {
    let (http, _) = http_server(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

fn post(path: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
}

async fn echo(addr: SocketAddr, value: i64) -> Reply {
    let body = request("echo", vec![("value", int(value))]);
    send(
        addr,
        post("/echo").body(Full::new(Bytes::from(body))).unwrap(),
    )
    .await
}

/// Any request body.
type AnyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A keep-alive client connection, and whether the server has closed it.
struct KeepAlive {
    sender: hyper::client::conn::http1::SendRequest<AnyBody>,
    closed: tokio::task::JoinHandle<()>,
}

impl KeepAlive {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let closed = tokio::spawn(async move {
            let _ = connection.await;
        });
        Self { sender, closed }
    }

    async fn call(&mut self, method: &str, value: i64) -> Reply {
        let param = if method == "hold" { "millis" } else { "value" };
        let body = request(method, vec![(param, int(value))]);
        let request = post(&format!("/{method}"))
            .body(Full::new(Bytes::from(body)).boxed_unsync())
            .unwrap();
        let sent = async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        };
        let response = tokio::time::timeout(HANG, sent)
            .await
            .expect("an answer")
            .expect("the connection is open");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply(Response::from_parts(parts, body))
    }

    /// Waits for the server to close the connection.
    async fn until_closed(self) {
        tokio::time::timeout(HANG, self.closed)
            .await
            .expect("the server closes the connection")
            .unwrap();
    }
}

/// Everything the server sends on `stream` until it closes the connection.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    // A reset after the answer also ends the connection.
    let _ = tokio::time::timeout(HANG, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

fn head(path: &str, content_length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: {}\r\ncontent-length: {content_length}\r\n\r\n",
        vgirpc_http::ARROW_STREAM
    )
}

// ---------------------------------------------------------------------------
// zstd bombs
// ---------------------------------------------------------------------------

/// `frames` frames of `frame_bytes` zeros each: a few kilobytes that
/// expand to `frames * frame_bytes`.
fn bomb(frame_bytes: usize, frames: usize) -> Vec<u8> {
    let frame = zstd::bulk::compress(&vec![0u8; frame_bytes], 3).unwrap();
    frame.repeat(frames)
}

async fn send_zstd(addr: SocketAddr, compressed: Vec<u8>) -> Reply {
    send(
        addr,
        post("/echo")
            .header("content-encoding", "zstd")
            .body(Full::new(Bytes::from(compressed)))
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn zstd_bombs_are_refused_with_413_at_the_decompressed_cap() {
    // 16 × max_request_bytes: a 4 MiB cap.
    let server = start(HttpConfig::new().with_max_request_bytes(256 * 1024)).await;
    let payload = bomb(8 << 20, 8);
    assert!(payload.len() < 256 * 1024, "{}", payload.len());
    let reply = send_zstd(server.addr, payload).await;
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let message = String::from_utf8_lossy(reply.body());
    assert!(message.contains("4194304"), "{message}");
    assert!(message.contains("max_decompressed_bytes"), "{message}");

    // A body within the cap still decodes, in place or as a stream.
    let body = request("echo", vec![("value", int(11))]);
    let reply = send_zstd(server.addr, zstd::bulk::compress(&body, 3).unwrap()).await;
    assert_eq!(reply.ints(), [11]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_decompressed_cap_is_configurable_and_holds_for_every_frame_shape() {
    let cap = 1 << 20;
    let server = start(HttpConfig::new().with_max_decompressed_bytes(cap)).await;
    // Declared in the frame header and small: the in-place path.
    let declared = zstd::bulk::compress(&vec![0u8; cap as usize + 1], 3).unwrap();
    // No declared size, and several frames: the streaming path.
    let mut undeclared = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    undeclared.include_contentsize(false).unwrap();
    undeclared.write_all(&vec![0u8; 3 << 20]).unwrap();
    let undeclared = undeclared.finish().unwrap();
    for payload in [declared, undeclared, bomb(512 * 1024, 3)] {
        let reply = send_zstd(server.addr, payload).await;
        assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(String::from_utf8_lossy(reply.body()).contains("1048576"));
    }
    let reply = send_zstd(server.addr, b"not a zstd frame".to_vec()).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(echo(server.addr, 3).await.ints(), [3]);
}

// ---------------------------------------------------------------------------
// Refusals before the body is read
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn answers_before_the_body_is_read_close_the_connection() {
    let tokens = [(
        "t".to_owned(),
        vgirpc_http::AuthContext::authenticated("bearer", "a"),
    )];
    let config = HttpConfig::new()
        .with_max_request_bytes(4096)
        .with_authenticate(vgirpc_http::bearer_static(tokens));
    let server = start(config).await;
    let big = Bytes::from(vec![b'a'; 40_000]);
    for authorization in ["Bearer t", "Bearer wrong"] {
        // Several rounds: whether the unread rest had arrived by the time
        // of the answer varies.
        for _ in 0..20 {
            let mut client = KeepAlive::open(server.addr).await;
            let request = post("/echo")
                .header("authorization", authorization)
                .body(Full::new(big.clone()).boxed_unsync())
                .unwrap();
            client.sender.ready().await.unwrap();
            let response = client.sender.send_request(request).await.unwrap();
            assert!(
                [StatusCode::PAYLOAD_TOO_LARGE, StatusCode::UNAUTHORIZED]
                    .contains(&response.status())
            );
            assert_eq!(
                response.headers().get("connection").map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "{authorization}"
            );
            client.until_closed().await;
        }
    }
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_arriving_is_answered_408_and_closed() {
    let server = start(HttpConfig::new().with_body_read_timeout(Some(SHORT))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(head("/echo", 1000).as_bytes())
        .await
        .unwrap();
    stream.write_all(&[0u8; 10]).await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains("No request body bytes arrived"), "{answer}");
    assert_eq!(echo(server.addr, 4).await.ints(), [4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_heads_that_trickle_or_never_come_are_cut_off() {
    let server = start(HttpConfig::new().with_header_read_timeout(Some(SHORT))).await;
    // Slowloris: a byte of the head every 50 ms, never the end of it.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let (mut reading, mut writing) = trickle.split();
    let writer = async {
        writing.write_all(b"POST /echo HTTP/1.1\r\n").await?;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writing.write_all(b"x").await?;
        }
    };
    let mut received = Vec::new();
    let ended = tokio::select! {
        read = reading.read_to_end(&mut received) => read.map(|_| ()),
        written = writer => written,
        () = tokio::time::sleep(HANG) => panic!("the trickling head was never cut off"),
    };
    // Closed without an answer (a reset is a close too).
    let _ = ended;
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(until_closed(&mut silent).await, "");
    assert_eq!(echo(server.addr, 5).await.ints(), [5]);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_are_closed() {
    let server = start(HttpConfig::new().with_keep_alive_timeout(Some(SHORT))).await;
    let mut client = KeepAlive::open(server.addr).await;
    assert_eq!(client.call("echo", 1).await.ints(), [1]);
    assert_eq!(client.call("echo", 2).await.ints(), [2]);
    client.until_closed().await;
}

// ---------------------------------------------------------------------------
// The connection limit
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_while_open_ones_are_served() {
    let server = start(HttpConfig::new().with_max_connections(2)).await;
    let mut first = KeepAlive::open(server.addr).await;
    let mut second = KeepAlive::open(server.addr).await;
    assert_eq!(first.call("echo", 1).await.ints(), [1]);
    assert_eq!(second.call("echo", 2).await.ints(), [2]);

    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let body = request("echo", vec![("value", int(3))]);
    third
        .write_all(head("/echo", body.len()).as_bytes())
        .await
        .unwrap();
    third.write_all(&body).await.unwrap();
    let mut answer = [0u8; 12];
    let early = tokio::time::timeout(SHORT, third.read_exact(&mut answer)).await;
    assert!(early.is_err(), "the third connection was served at once");
    // The open connections keep being served meanwhile.
    assert_eq!(first.call("echo", 10).await.ints(), [10]);
    assert_eq!(second.call("echo", 20).await.ints(), [20]);

    drop(second);
    tokio::time::timeout(HANG, third.read_exact(&mut answer))
        .await
        .expect("the third connection is served once a slot frees")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert_eq!(first.call("echo", 11).await.ints(), [11]);
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_make_room_for_waiting_ones() {
    // Without a header timeout only the limit can close them.
    let config = HttpConfig::new()
        .with_max_connections(2)
        .with_header_read_timeout(None);
    let server = start(config).await;
    let mut silent = [
        TcpStream::connect(server.addr).await.unwrap(),
        TcpStream::connect(server.addr).await.unwrap(),
    ];
    // Accepted, not just queued: both are closed to make room below.
    assert_eq!(echo(server.addr, 6).await.ints(), [6]);
    for stream in &mut silent {
        assert_eq!(until_closed(stream).await, "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_heads_on_every_slot_do_not_starve_a_valid_client() {
    let server = start(
        HttpConfig::new()
            .with_max_connections(4)
            .with_header_read_timeout(Some(SHORT)),
    )
    .await;
    let mut attackers = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        attackers.push(tokio::spawn(async move {
            let _ = stream.write_all(b"POST /echo HTTP/1.1\r\n").await;
            while stream.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    let reply = tokio::time::timeout(HANG, echo(server.addr, 7))
        .await
        .expect("a valid request is served");
    assert_eq!(reply.ints(), [7]);
    for attacker in attackers {
        attacker.abort();
    }
}

// ---------------------------------------------------------------------------
// Drain
// ---------------------------------------------------------------------------

/// A request body whose pieces the test hands over one at a time.
struct Trickled {
    pieces: tokio::sync::mpsc::Receiver<Bytes>,
    len: u64,
}

impl http_body::Body for Trickled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.pieces
            .poll_recv(cx)
            .map(|piece| piece.map(|piece| Ok(http_body::Frame::data(piece))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_answers_the_requests_in_flight_then_refuses_connections() {
    // The server runs on a runtime of its own that is shut down once
    // `serve` returns, as a process would exit: whatever is still in
    // flight then is lost.
    let (http, entered) = http_server(HttpConfig::new());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let served = runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            http.serve(listener, async {
                let _ = stopped.await;
            })
            .await
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
        served
    });

    let mut idle = KeepAlive::open(addr).await;
    assert_eq!(idle.call("echo", 1).await.ints(), [1]);
    // A method running when the shutdown comes.
    let mut busy = KeepAlive::open(addr).await;
    let running = tokio::spawn(async move {
        let reply = busy.call("hold", 1500).await;
        (reply, busy)
    });
    tokio::time::timeout(HANG, entered.notified())
        .await
        .expect("the call started");
    // A request whose body is half sent when the shutdown comes.
    let mut slow = KeepAlive::open(addr).await;
    assert_eq!(slow.call("echo", 2).await.ints(), [2]);
    let body = request("echo", vec![("value", int(3))]);
    let (pieces, receiver) = tokio::sync::mpsc::channel(2);
    let half = body.len() / 2;
    pieces
        .send(Bytes::copy_from_slice(&body[..half]))
        .await
        .unwrap();
    let trickled = Trickled {
        pieces: receiver,
        len: body.len() as u64,
    };
    let receiving = tokio::spawn(async move {
        let request = post("/echo").body(trickled.boxed_unsync()).unwrap();
        slow.sender.ready().await.unwrap();
        let response = slow.sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (Reply(Response::from_parts(parts, body)), slow.closed)
    });

    stop.send(()).unwrap();
    tokio::time::timeout(HANG, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("new connections are refused");
    pieces
        .send(Bytes::copy_from_slice(&body[half..]))
        .await
        .unwrap();

    // Its answer may be ready before the server sees the shutdown (the
    // method holds a runtime thread), so it need not say `close`; its
    // connection closes all the same.
    let (reply, busy) = running.await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.ints(), [1500]);
    let (reply, slow_closed) = tokio::time::timeout(HANG, receiving)
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(reply.ints(), [3]);
    assert_eq!(reply.header("connection"), Some("close"));
    busy.until_closed().await;
    idle.until_closed().await;
    tokio::time::timeout(HANG, slow_closed)
        .await
        .expect("the server closes the connection")
        .unwrap();
    server.join().unwrap().unwrap();
}

#[tokio::test]
async fn a_huge_method_name_is_not_echoed_back_whole() {
    let running = start(HttpConfig::new()).await;
    let body = request(&"m".repeat(1 << 20), vec![("value", int(1))]);
    let reply = send(
        running.addr,
        post("/echo").body(Full::new(Bytes::from(body))).unwrap(),
    )
    .await;
    let err = reply.error().expect("an error answer");
    assert_error_contains(&err, "Method name mismatch");
    assert!(
        err.message.len() < 4096,
        "an error of {} bytes",
        err.message.len()
    );
    assert_error_contains(&err, "(1048576 bytes)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_method_is_an_error_answer_and_the_server_serves_on() {
    let running = start(HttpConfig::new()).await;
    let body = request("explode", vec![("value", int(7))]);
    let reply = send(
        running.addr,
        post("/explode").body(Full::new(Bytes::from(body))).unwrap(),
    )
    .await;
    let err = reply.error().expect("an error answer, not a bare status");
    assert_eq!(err.error_type, "PanicError");
    assert_error_contains(&err, "exploded with 7");
    assert_eq!(echo(running.addr, 5).await.ints(), vec![5]);
}
