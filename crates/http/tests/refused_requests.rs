//! Requests the HTTP transport refuses, and with which status: protocol
//! errors (400), unknown methods and paths (404), wrong media types (415),
//! oversized bodies (413, also when chunked) and truncated bodies; after
//! each the server keeps serving.

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
    pub(crate) mod probe;
    pub(crate) mod probe_call;
    pub(crate) mod probe_start;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use common::errors::assert_error_contains;
use common::int_param::int;
use common::probe::{int_schema, keyed, post};
use common::probe_call::call;
use common::probe_start::start;
use common::request::request;
use common::send::send;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpStream;
use vgirpc::wire::ipc::write_stream_bytes;
use vgirpc::wire::metadata::{self, Metadata};

#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_are_400() {
    let server = start(keyed()).await;
    // No request version.
    let batch = RecordBatch::try_new(int_schema(), vec![int(1)]).unwrap();
    let md = Metadata::new().with(metadata::METHOD, "echo");
    let body = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
    let reply = call(server.addr, "/echo", body).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").error_type,
        "VersionError"
    );

    // The URL names another method than the batch.
    let reply = call(server.addr, "/echo", request("fail", vec![])).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_error_contains(
        &reply.error().expect("an error batch"),
        "Method name mismatch",
    );

    // A stream method on the unary endpoint.
    let reply = call(
        server.addr,
        "/count",
        request("count", vec![("limit", int(1))]),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_error_contains(
        &reply.error().expect("an error batch"),
        "requires /init and /exchange",
    );

    // Not Arrow IPC at all.
    let reply = call(server.addr, "/echo", b"definitely not arrow".to_vec()).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").error_type,
        "ArrowInvalid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_methods_and_paths_are_404() {
    let server = start(keyed()).await;
    let reply = call(server.addr, "/nope", request("nope", vec![])).await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    let error = reply.error().expect("an error batch");
    assert_eq!(error.error_type, "MethodNotImplementedError");
    assert_error_contains(&error, "'echo'");

    let reply = call(server.addr, "/a/b/c", Vec::new()).await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
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
    assert_eq!(reply.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error_contains(
        &reply.error().expect("an error batch"),
        "Expected Content-Type",
    );

    let reply = send(
        server.addr,
        post("/echo", body.clone())
            .header("content-encoding", "br")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
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
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8_lossy(reply.body()).contains("max_request_bytes=1024"));

    // Chunked, so the size is only discovered while reading.
    let chunks = Chunked(vec![Bytes::from(vec![0u8; 700]), Bytes::from(vec![0u8; 700])].into());
    let reply = send(server.addr, post("/echo", Vec::new()).body(chunks).unwrap()).await;
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);

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
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_error_contains(&reply.error().expect("an error batch"), "truncated");

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
