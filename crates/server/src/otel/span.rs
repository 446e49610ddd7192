//! The dispatch span: started when a call is routed, a child of the
//! caller's trace, and ended with the call's outcome and the work it did.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, StringValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use vgirpc_wire::log::ErrorInfo;
use vgirpc_wire::metadata::{self, Metadata};

use super::{SpanOptions, claim_text};
use crate::answer::Answer;
use crate::call_span::SpanStart;
use crate::observe::CallStats;

/// What every dispatch span's name starts with, before the method's name.
const SPAN_NAME_PREFIX: &str = "vgi_rpc/";

/// A tracer of any provider, as the dispatch spans use it: a span started
/// as the current span of a context.
pub(crate) trait StartSpan: Send + Sync + 'static {
    /// Starts the span `builder` describes, child of `parent`, and returns
    /// `parent` with the span current.
    fn start_in(&self, builder: SpanBuilder, parent: &Context) -> Context;
}

impl<T> StartSpan for T
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn start_in(&self, builder: SpanBuilder, parent: &Context) -> Context {
        parent.with_span(self.build_with_context(builder, parent))
    }
}

/// A server's span recording: the tracer and what its spans carry.
pub(crate) struct Tracing {
    tracer: Arc<dyn StartSpan>,
    options: SpanOptions,
    /// The attribute values every span repeats, shared rather than copied.
    service: StringValue,
    /// Static, so that every span shares it without touching a reference
    /// count: on a multi-threaded server that count's cache line would
    /// travel between cores with every call.
    server_id: &'static str,
}

impl Tracing {
    pub(super) fn new(tracer: Arc<dyn StartSpan>, options: SpanOptions, service: &str) -> Self {
        Self {
            tracer,
            options,
            service: StringValue::from(Arc::<str>::from(service)),
            server_id: crate::context::server_id(),
        }
    }

    /// Starts a call's span with the reference's name, kind and attributes,
    /// child of the trace the request names or else of the current context.
    pub(crate) fn start(&self, start: &SpanStart<'_>) -> OtelSpan {
        let parent = start
            .metadata
            .and_then(remote_parent)
            .unwrap_or_else(Context::current);
        let auth = start.auth;
        let options = &self.options;
        // Room for what ending the span adds too (the outcome counters and
        // an error type), so that the span never grows its attributes.
        let mut attributes = Vec::with_capacity(
            9 + options.claim_attributes.len()
                + options.custom_attributes.len()
                + OUTCOME_ATTRIBUTES
                + 1,
        );
        attributes.extend([
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", self.service.clone()),
            KeyValue::new("rpc.method", start.method.to_owned()),
            KeyValue::new("rpc.vgi_rpc.method_type", start.method_type.as_str()),
            KeyValue::new("rpc.vgi_rpc.server_id", self.server_id),
        ]);
        if let Some(principal) = non_empty(&auth.principal) {
            attributes.push(KeyValue::new(
                "rpc.vgi_rpc.auth.principal",
                principal.to_owned(),
            ));
        }
        if let Some(domain) = non_empty(&auth.domain) {
            attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.to_owned()));
        }
        // A string, as the reference sends it.
        attributes.push(KeyValue::new(
            "rpc.vgi_rpc.auth.authenticated",
            if auth.authenticated { "true" } else { "false" },
        ));
        if let Some(stream_id) = start.stream_id {
            attributes.push(KeyValue::new("rpc.stream_id", stream_id.to_owned()));
        }
        for (claim, attribute) in &options.claim_attributes {
            if let Some(value) = auth.claims.get(claim).and_then(claim_text) {
                attributes.push(KeyValue::new(attribute.clone(), value));
            }
        }
        attributes.extend(options.custom_attributes.iter().cloned());
        // Built by hand: `format!` costs a call several times as much.
        let mut name = String::with_capacity(SPAN_NAME_PREFIX.len() + start.method.len());
        name.push_str(SPAN_NAME_PREFIX);
        name.push_str(start.method);
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes);
        OtelSpan {
            context: self.tracer.start_in(builder, &parent),
            record_exceptions: options.record_exceptions,
        }
    }
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("options", &self.options)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// One call's span, in the context that makes it the parent of whatever
/// the method records.
#[derive(Debug, Clone)]
pub(crate) struct OtelSpan {
    context: Context,
    /// Copied from the options rather than reached through a shared
    /// `Tracing`, whose reference count every call would otherwise write.
    record_exceptions: bool,
}

impl OtelSpan {
    /// The context to run the call's work in.
    pub(crate) fn context(&self) -> &Context {
        &self.context
    }

    /// Names the stream the call opened.
    pub(crate) fn set_stream_id(&self, stream_id: &str) {
        self.context
            .span()
            .set_attribute(KeyValue::new("rpc.stream_id", stream_id.to_owned()));
    }

    /// Ends the span as a call's answer says: failed with the answer's
    /// error, or succeeded, with the work the call's record counted.
    pub(crate) fn end(&self, answer: &Answer) {
        let stats = answer
            .record
            .as_ref()
            .map(|record| record.stats)
            .unwrap_or_default();
        match &answer.failure {
            Some((_, error)) => self.fail(error, &stats),
            None => self.succeed(&stats),
        }
    }

    /// Ends the span as succeeded, with the work done.
    pub(crate) fn succeed(&self, stats: &CallStats) {
        let span = self.context.span();
        span.set_status(Status::Ok);
        span.set_attributes(outcome(stats));
        span.end();
    }

    /// Ends the span as failed with `error`, as the reference's hook does.
    pub(crate) fn fail(&self, error: &ErrorInfo, stats: &CallStats) {
        let span = self.context.span();
        span.set_status(Status::error(error.message.clone()));
        span.set_attribute(KeyValue::new(
            "rpc.vgi_rpc.error_type",
            error.error_type.clone(),
        ));
        span.set_attributes(outcome(stats));
        if self.record_exceptions {
            let mut attributes = vec![
                KeyValue::new("exception.type", error.error_type.clone()),
                KeyValue::new("exception.message", error.message.clone()),
            ];
            if !error.traceback.is_empty() {
                attributes.push(KeyValue::new(
                    "exception.stacktrace",
                    error.traceback.clone(),
                ));
            }
            span.add_event("exception", attributes);
        }
        span.end();
    }
}

/// How many attributes [`outcome`] gives a span.
const OUTCOME_ATTRIBUTES: usize = 6;

/// The reference's six counters of the work a span covered.
fn outcome(stats: &CallStats) -> [KeyValue; OUTCOME_ATTRIBUTES] {
    // As i64, the type OpenTelemetry's integers have.
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    [
        KeyValue::new("rpc.vgi_rpc.input_batches", count(stats.input_batches)),
        KeyValue::new("rpc.vgi_rpc.output_batches", count(stats.output_batches)),
        KeyValue::new("rpc.vgi_rpc.input_rows", count(stats.input_rows)),
        KeyValue::new("rpc.vgi_rpc.output_rows", count(stats.output_rows)),
        KeyValue::new("rpc.vgi_rpc.input_bytes", count(stats.input_bytes)),
        KeyValue::new("rpc.vgi_rpc.output_bytes", count(stats.output_bytes)),
    ]
}

/// The caller's span, named by `traceparent`/`tracestate` in the request
/// metadata, when the metadata names a valid one.
fn remote_parent(request: &Metadata) -> Option<Context> {
    let traceparent = request.get(metadata::TRACEPARENT)?;
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert(metadata::TRACEPARENT.to_owned(), traceparent.to_owned());
    if let Some(tracestate) = request.get(metadata::TRACESTATE) {
        carrier.insert(metadata::TRACESTATE.to_owned(), tracestate.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    let valid = parent.span().span_context().is_valid();
    valid.then_some(parent)
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|text| !text.is_empty())
}
