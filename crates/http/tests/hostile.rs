//! Hostile and failing peers: zstd bombs.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Reply, int, request, send};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use vgirpc::{RpcError, Server};
use vgirpc_http::{HttpConfig, HttpServer, TokenKey};

#[vgirpc::service]
pub trait Steady {
    /// Echo an integer.
    fn echo(&self, value: i64) -> Result<i64, RpcError>;
    /// Say it started, sleep `millis`, then answer them.
    fn hold(&self, millis: i64) -> Result<i64, RpcError>;
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
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let message = String::from_utf8_lossy(&reply.body);
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
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(String::from_utf8_lossy(&reply.body).contains("1048576"));
    }
    let reply = send_zstd(server.addr, b"not a zstd frame".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(echo(server.addr, 3).await.ints(), [3]);
}
