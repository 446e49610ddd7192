//! The [`Who`](super::who::Who) service served as a test's configuration
//! says.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use vgirpc_http::{HttpConfig, HttpServer};

use super::who::{serve, who};

/// Serves [`Who`](super::who::Who) as `config` says.
pub(crate) async fn start(config: HttpConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve(listener, server(config));
    addr
}

/// [`Who`](super::who::Who) behind the HTTP stack `config` describes.
pub(crate) fn server(config: HttpConfig) -> HttpServer {
    HttpServer::new(who(), config).unwrap()
}
