//! Sentry and OpenTelemetry on one server, configured in either order,
//! both report a failed call.
#![cfg(all(feature = "sentry", feature = "otel"))]

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use sentry_core::protocol::Event;
use sentry_core::test::with_captured_events;
use vgirpc::otel::OtelConfig;
use vgirpc::sentry::SentryConfig;
use vgirpc::transport::Call;
use vgirpc::wire::request::Request;
use vgirpc::{Peer, RpcError, Server, TransportKind};

/// Service used by this test.
#[vgirpc::service]
pub trait Failing {
    /// Always fails.
    fn fail(&self, value: String) -> Result<String, RpcError>;
}

struct Impl;

impl Failing for Impl {
    fn fail(&self, value: String) -> Result<String, RpcError> {
        Err(RpcError::value_error(format!("bad {value}")))
    }
}

fn fail(server: &Server) {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let params =
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["x"]))]).unwrap();
    let request = Request {
        method: "fail".to_owned(),
        params,
        metadata: Request::metadata_for("fail"),
    };
    match server.dispatch_from(request, &Peer::anonymous(TransportKind::Pipe)) {
        Call::Answer(answer) => server.emit(answer.record.as_deref().unwrap()),
        Call::Stream(_) => panic!("fail is unary"),
    }
}

/// The span names exported and the Sentry events of one failed call.
fn both(sentry_first: bool) -> (Vec<String>, Vec<Event<'static>>) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let otel = || {
        OtelConfig::new()
            .with_tracer_provider(&provider)
            .without_metrics()
    };
    let events = with_captured_events(|| {
        let server = Server::new(FailingServer::new(Impl)).unwrap();
        if sentry_first {
            server.instrument_sentry(SentryConfig::new());
            server.instrument_otel(otel());
        } else {
            server.instrument_otel(otel());
            server.instrument_sentry(SentryConfig::new());
        }
        fail(&server);
    });
    provider.force_flush().unwrap();
    let spans = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|span| span.name.into_owned())
        .collect();
    (spans, events)
}

#[test]
fn both_report_one_failed_call_in_either_order() {
    for sentry_first in [false, true] {
        let (spans, events) = both(sentry_first);
        assert_eq!(spans, ["vgi_rpc/fail"], "sentry first: {sentry_first}");
        assert_eq!(events.len(), 1, "sentry first: {sentry_first}");
        assert_eq!(events[0].exception.values[0].ty, "ValueError");
    }
}
