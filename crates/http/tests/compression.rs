//! Compression over the HTTP transport: zstd request bodies are read,
//! large responses are compressed for clients that accept zstd, small
//! ones are sent as they are, and a body that is not a zstd frame is 400.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod header;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod probe;
    pub(crate) mod probe_start;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use bytes::Bytes;
use common::int_param::int;
use common::probe::{keyed, post};
use common::probe_start::start;
use common::reply::Reply;
use common::request::request;
use common::send::send;
use http::StatusCode;
use http_body_util::Full;

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
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.header("content-encoding"), Some("zstd"));
    let size = zstd::zstd_safe::get_frame_content_size(reply.body()).unwrap();
    let plain = zstd::decode_all(&reply.body()[..]).unwrap();
    assert_eq!(
        size,
        Some(plain.len() as u64),
        "the frame records the body size"
    );
    assert!(plain.len() > reply.body().len());
    let reply = Reply(reply.0.map(|_| Bytes::from(plain)));
    let ints = reply.ints();
    assert!(!ints.is_empty());
    assert!(ints.iter().copied().eq(0..ints.len() as i64), "{ints:?}");

    // A small response is sent as it is, though the client accepts zstd:
    // compressing it would cost both sides more than its bytes.
    let reply = send(server.addr, compressed_request(1)).await;
    assert_eq!(reply.status(), StatusCode::OK);
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
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
}
