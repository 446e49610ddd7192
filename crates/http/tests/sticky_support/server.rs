//! The [`Tally`](super::tally::Tally) service behind a real listener, and
//! the configurations the tests serve it with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vgirpc_http::{HttpConfig, HttpServer, StickyConfig, TokenKey};

use super::tally::tally;

/// A running server; it stops when this is dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    /// Sessions closed so far.
    pub(crate) closes: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

pub(crate) fn key() -> TokenKey {
    TokenKey::new(b"sticky test key")
}

pub(crate) fn sticky() -> HttpConfig {
    HttpConfig::new()
        .with_token_key(key())
        .with_sticky(StickyConfig::new().with_echo_header("x-route", "machine-7"))
}

pub(crate) async fn start(config: HttpConfig) -> TestServer {
    let closes = Arc::new(AtomicUsize::new(0));
    let http = HttpServer::new(tally(closes.clone()), config).unwrap();
    serve(http, closes).await
}

/// Serves `http`, a [`tally`] counting its closes in `closes`.
pub(crate) async fn serve(http: HttpServer, closes: Arc<AtomicUsize>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        closes,
        _stop: stop,
    }
}
