//! A call to the probe service as a plain POST.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;

use super::probe::post;
use super::reply::Reply;
use super::send::send;

pub(crate) async fn call(addr: SocketAddr, path: &str, body: Vec<u8>) -> Reply {
    send(
        addr,
        post(path, body.clone())
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}
