//! W3C trace-context propagation into dispatch spans (feature `otel`).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use vgirpc_wire::metadata::{self, Metadata};

/// Makes the caller's span, named by `traceparent`/`tracestate` in the
/// request metadata, the parent of `span`.
pub(crate) fn adopt_remote_parent(span: &tracing::Span, request: &Metadata) {
    let Some(traceparent) = request.get(metadata::TRACEPARENT) else {
        return;
    };
    let mut carrier = HashMap::new();
    carrier.insert(metadata::TRACEPARENT.to_owned(), traceparent.to_owned());
    if let Some(tracestate) = request.get(metadata::TRACESTATE) {
        carrier.insert(metadata::TRACESTATE.to_owned(), tracestate.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    // Without an OpenTelemetry layer installed there is nothing to attach to.
    let _ = span.set_parent(parent);
}
