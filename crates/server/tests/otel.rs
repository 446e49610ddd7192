//! With the `otel` feature, a caller's W3C trace context becomes the parent
//! of the dispatch span.
#![cfg(feature = "otel")]

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use vgirpc::otel::OtelConfig;
use vgirpc::wire::ipc::write_stream_bytes;
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request;
use vgirpc::{RpcError, Server, TransportKind};

/// Service used by this test.
#[vgirpc::service]
pub trait Echo {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
}

struct Impl;

impl Echo for Impl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
}

/// One `echo("x")` request carrying `md`.
fn echo_request(md: &Metadata) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();
    write_stream_bytes(&schema, [(&batch, md)]).unwrap()
}

#[test]
fn traceparent_becomes_the_span_parent() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let md = Request::metadata_for("echo")
        .with(
            metadata::TRACEPARENT,
            format!("00-{trace_id}-{parent_span}-01"),
        )
        .with(metadata::TRACESTATE, "vendor=value");
    let input = echo_request(&md);

    let server = Server::new(EchoServer::new(Impl)).unwrap();
    server.instrument_otel(
        OtelConfig::new()
            .with_tracer_provider(&provider)
            .without_metrics(),
    );
    server
        .serve(Cursor::new(input), std::io::sink(), TransportKind::Pipe)
        .unwrap();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let rpc = spans
        .iter()
        .find(|s| s.name == "vgi_rpc/echo")
        .unwrap_or_else(|| {
            panic!(
                "no rpc span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(rpc.span_context.trace_id().to_string(), trace_id);
    assert_eq!(rpc.parent_span_id.to_string(), parent_span);
}

#[test]
fn a_malformed_traceparent_starts_a_trace_of_its_own() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let md = Request::metadata_for("echo")
        .with(metadata::TRACEPARENT, "00-not-a-trace-context-at-all")
        .with(metadata::TRACESTATE, "=".repeat(4096));
    let input = echo_request(&md);
    let mut output = Vec::new();

    let server = Server::new(EchoServer::new(Impl)).unwrap();
    server.instrument_otel(
        OtelConfig::new()
            .with_tracer_provider(&provider)
            .without_metrics(),
    );
    server
        .serve(Cursor::new(input), &mut output, TransportKind::Pipe)
        .unwrap();
    assert!(!output.is_empty(), "the call is answered");
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let rpc = spans.iter().find(|s| s.name == "vgi_rpc/echo").unwrap();
    assert!(rpc.span_context.is_valid());
    assert_eq!(
        rpc.parent_span_id,
        opentelemetry::trace::SpanId::INVALID,
        "no parent from a traceparent that names none"
    );
}
