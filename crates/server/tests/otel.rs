//! With the `otel` feature, a caller's W3C trace context becomes the parent
//! of the dispatch span.
#![cfg(feature = "otel")]

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod echo;
}

use std::io::Cursor;

use common::echo::{EchoImpl, EchoServer, echo_request};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use vgirpc::otel::OtelConfig;
use vgirpc::wire::metadata;
use vgirpc::wire::request::Request;
use vgirpc::{Server, TransportKind};

/// An echo server recording its spans, the provider that records them and
/// the exporter they land in.
fn traced_echo() -> (Server, SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let server = Server::new(EchoServer::new(EchoImpl)).unwrap();
    server.instrument_otel(
        OtelConfig::new()
            .with_tracer_provider(&provider)
            .without_metrics(),
    );
    (server, provider, exporter)
}

#[test]
fn traceparent_becomes_the_span_parent() {
    let (server, provider, exporter) = traced_echo();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let md = Request::metadata_for("echo")
        .with(
            metadata::TRACEPARENT,
            format!("00-{trace_id}-{parent_span}-01"),
        )
        .with(metadata::TRACESTATE, "vendor=value");
    let input = echo_request(&md);

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
    let (server, provider, exporter) = traced_echo();
    let md = Request::metadata_for("echo")
        .with(metadata::TRACEPARENT, "00-not-a-trace-context-at-all")
        .with(metadata::TRACESTATE, "=".repeat(4096));
    let input = echo_request(&md);
    let mut output = Vec::new();

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

#[test]
fn the_span_lies_within_the_call_on_the_wall_clock() {
    let (server, provider, exporter) = traced_echo();
    let input = echo_request(&Request::metadata_for("echo"));

    let before = std::time::SystemTime::now();
    server
        .serve(Cursor::new(input), std::io::sink(), TransportKind::Pipe)
        .unwrap();
    let after = std::time::SystemTime::now();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let rpc = spans.iter().find(|s| s.name == "vgi_rpc/echo").unwrap();
    assert!(rpc.start_time >= before, "started before the call");
    assert!(rpc.end_time >= rpc.start_time);
    assert!(rpc.end_time <= after, "ended after the call");
}
