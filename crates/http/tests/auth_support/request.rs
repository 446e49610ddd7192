//! Calling `whoami` with the credentials under test.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::common::reply::Reply;
use crate::common::request::request;
use crate::common::send::send;

/// Calls `whoami` at `path` (under a prefix) with `headers`.
pub(crate) async fn whoami_at(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::post(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = Bytes::from(request("whoami", vec![]));
    send(addr, builder.body(Full::new(body)).unwrap()).await
}
