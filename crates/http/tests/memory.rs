//! The memory one large request costs, as the peak resident size of this
//! process (Linux `/proc/self/status`, the peak reset through
//! `/proc/self/clear_refs`). A binary of its own with a single test, so
//! that nothing else allocates meanwhile, and with the allocator the
//! workers use: mimalloc keeps freed memory resident for reuse, so every
//! copy of a body shows in the peak.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use vgirpc::{RpcError, Server};
use vgirpc_http::{HttpConfig, HttpServer, TokenKey};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[vgirpc::service]
pub trait Tiny {
    /// Echo an integer.
    fn echo(&self, value: i64) -> Result<i64, RpcError>;
}

struct TinyImpl;

impl Tiny for TinyImpl {
    fn echo(&self, value: i64) -> Result<i64, RpcError> {
        Ok(value)
    }
}

/// A body of one shared piece sent over and over: it costs the client
/// one piece of memory, whatever its length.
struct Repeated {
    pieces: VecDeque<Bytes>,
    len: u64,
}

impl Repeated {
    fn new(piece: Bytes, count: usize) -> Self {
        Self {
            len: (piece.len() * count) as u64,
            pieces: std::iter::repeat_n(piece, count).collect(),
        }
    }
}

impl Body for Repeated {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.pieces.pop_front().map(|piece| Ok(Frame::data(piece))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// A field of `/proc/self/status`, in bytes.
fn status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line.trim().trim_end_matches(" kB").parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_body_is_held_once() {
    let server = Server::new(TinyServer::new(TinyImpl)).unwrap();
    let config = HttpConfig::new().with_token_key(TokenKey::new(b"memory"));
    let http = HttpServer::new(server, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http.serve(listener, std::future::pending()));

    let body_bytes: u64 = 192 << 20;
    let body = Repeated::new(Bytes::from(vec![7u8; 1 << 20]), (body_bytes >> 20) as usize);
    // The wrong media type is refused only once the body is read, and
    // nothing decodes it: what is measured is the body being held.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/echo")
        .header("host", "test")
        .header("content-type", "text/plain")
        .body(body)
        .unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);

    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let baseline = status("VmRSS");
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    response.into_body().collect().await.unwrap();
    let grown = status("VmHWM").saturating_sub(baseline);
    eprintln!("a {body_bytes}-byte body raised the peak by {grown} bytes");
    // Held twice (the pieces and a joined copy) it would be 2×.
    assert!(grown * 10 < body_bytes * 12, "{grown} bytes");
}
