//! The caller's trace context on outgoing requests, so that a server's
//! dispatch span continues the caller's trace (feature `otel`).

use vgirpc_wire::metadata::Metadata;
use vgirpc_wire::request::Request;

/// The metadata of a request for `method`: with the `otel` feature, the
/// current span's W3C `traceparent` and `tracestate` join it, as the
/// reference's client adds them on every transport.
pub(crate) fn request_metadata(method: &str) -> Metadata {
    let md = Request::metadata_for(method);
    #[cfg(feature = "otel")]
    let md = current_context()
        .into_iter()
        .fold(md, |md, (key, value)| md.with(key, value));
    md
}

/// `traceparent` and `tracestate` of the current span, empty when it is
/// not part of a valid OpenTelemetry trace. The current span is the
/// `tracing` one when a `tracing-opentelemetry` layer gives it a context,
/// else OpenTelemetry's current one (a server's dispatch span, for a
/// method that calls another service).
#[cfg(feature = "otel")]
pub(crate) fn current_context() -> Vec<(String, String)> {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let valid = |context: &opentelemetry::Context| context.span().span_context().is_valid();
    let context = Some(tracing::Span::current().context())
        .filter(valid)
        .or_else(|| Some(opentelemetry::Context::current()).filter(valid));
    let Some(context) = context else {
        return Vec::new();
    };
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&context, &mut carrier);
    let mut pairs: Vec<_> = carrier.into_iter().collect();
    // traceparent first: a stable order keeps request bytes reproducible.
    pairs.sort();
    pairs
}
