//! A caller that sends its W3C trace context only as HTTP headers (a proxy,
//! or a client of another stack) still parents the dispatch span; context
//! in the request's Arrow metadata wins over the headers.

use arrow_array::RecordBatch;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio::net::{TcpListener, TcpStream};
use vgirpc::otel::OtelConfig;
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata;
use vgirpc::wire::request::Request as RpcRequest;
use vgirpc::{RpcError, Server};
use vgirpc_http::{HttpConfig, HttpServer};

/// Service used by this test.
#[vgirpc::service]
pub trait Noop {
    /// Does nothing.
    fn noop(&self) -> Result<(), RpcError>;
}

struct Impl;

impl Noop for Impl {
    fn noop(&self) -> Result<(), RpcError> {
        Ok(())
    }
}

async fn post(addr: std::net::SocketAddr, body: Vec<u8>, traceparent: &str) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/noop")
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=value")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert!(response.status().is_success());
    response.into_body().collect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_headers_parent_the_dispatch_span_unless_the_body_has_context() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let server = Server::new(NoopServer::new(Impl)).unwrap();
    server.instrument_otel(
        OtelConfig::new()
            .with_tracer_provider(&provider)
            .without_metrics(),
    );
    let http = HttpServer::new(server, HttpConfig::new()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http.serve(listener, std::future::pending::<()>()));

    let header_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let header_parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{header_trace}-{header_parent}-01");
    let empty = RecordBatch::new_empty(empty_schema());
    let plain = write_stream_bytes(
        empty.schema_ref(),
        [(&empty, &RpcRequest::metadata_for("noop"))],
    )
    .unwrap();
    post(addr, plain, &traceparent).await;

    let body_trace = "0af7651916cd43dd8448eb211c80319c";
    let body_parent = "b7ad6b7169203331";
    let md = RpcRequest::metadata_for("noop").with(
        metadata::TRACEPARENT,
        format!("00-{body_trace}-{body_parent}-01"),
    );
    let traced = write_stream_bytes(empty.schema_ref(), [(&empty, &md)]).unwrap();
    post(addr, traced, &traceparent).await;

    provider.force_flush().unwrap();
    let spans: Vec<_> = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.name == "vgi_rpc/noop")
        .map(|s| {
            (
                s.span_context.trace_id().to_string(),
                s.parent_span_id.to_string(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        vec![
            (header_trace.to_owned(), header_parent.to_owned()),
            (body_trace.to_owned(), body_parent.to_owned()),
        ]
    );
}
