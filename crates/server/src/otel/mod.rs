//! OpenTelemetry for dispatch (feature `otel`), as the reference's
//! `instrument_server`: a span per call, child of the caller's W3C trace
//! context, with the reference's attributes and exceptions, and its request
//! metrics.
//!
//! Spans are made through the OpenTelemetry API directly rather than from
//! `tracing` spans through a bridge layer: a bridge builds each span twice
//! (once as a `tracing` span, once from its fields), which cost a call
//! several times what the span itself does.

mod metrics;
mod span;

use std::sync::Arc;

use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::trace::TracerProvider;
use opentelemetry::{InstrumentationScope, Key, KeyValue, Value};
use serde_json::Value as Json;

use crate::observe::CallStats;

pub(crate) use metrics::RequestMetrics;
use span::StartSpan;
pub(crate) use span::{OtelSpan, Tracing};

/// Instrumentation scope of the reference's tracer and meter, so that
/// dashboards built on either implementation select the same series.
const SCOPE_NAME: &str = "vgi_rpc";
const SCOPE_VERSION: &str = "0.1.0";

/// Metric name: calls served, by method and outcome.
pub const REQUESTS_METRIC: &str = "rpc.server.requests";
/// Metric name: seconds spent serving a call.
pub const DURATION_METRIC: &str = "rpc.server.duration";
/// Metric name: requests refused by authentication before any call.
pub const AUTH_FAILURE_METRIC: &str = "rpc.server.auth_failure";

/// What [`Server::instrument_otel`](crate::Server::instrument_otel) adds to
/// dispatch, as the reference's `OtelConfig`.
///
/// Spans go to the global tracer provider unless
/// [`OtelConfig::with_tracer_provider`] names another; metrics likewise
/// to the global meter provider.
#[derive(Clone)]
pub struct OtelConfig {
    tracer: Option<Arc<dyn StartSpan>>,
    meter: Option<Meter>,
    enable_tracing: bool,
    enable_metrics: bool,
    spans: SpanOptions,
}

impl std::fmt::Debug for OtelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelConfig")
            .field("own_tracer", &self.tracer.is_some())
            .field("own_meter", &self.meter.is_some())
            .field("enable_tracing", &self.enable_tracing)
            .field("enable_metrics", &self.enable_metrics)
            .field("spans", &self.spans)
            .finish()
    }
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            tracer: None,
            meter: None,
            enable_tracing: true,
            enable_metrics: true,
            spans: SpanOptions::default(),
        }
    }
}

impl OtelConfig {
    /// Spans and metrics through the global providers, exceptions recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records spans through `provider` instead of the global one.
    pub fn with_tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        // Kept as the provider's own tracer, not boxed as the global one
        // is: its spans then sit in the call's context behind one box
        // instead of two, which every span operation goes through.
        self.tracer = Some(Arc::new(provider.tracer_with_scope(scope())));
        self
    }

    /// Records no spans (metrics are kept).
    pub fn without_tracing(mut self) -> Self {
        self.enable_tracing = false;
        self
    }

    /// Records metrics through `provider` instead of the global one.
    pub fn with_meter_provider(mut self, provider: &impl MeterProvider) -> Self {
        self.meter = Some(provider.meter_with_scope(scope()));
        self
    }

    /// Records no metrics (spans are kept).
    pub fn without_metrics(mut self) -> Self {
        self.enable_metrics = false;
        self
    }

    /// Failed calls mark their span as an error without an `exception` event.
    pub fn without_exception_events(mut self) -> Self {
        self.spans.record_exceptions = false;
        self
    }

    /// Adds `key = value` to every dispatch span.
    pub fn with_custom_attribute(mut self, key: impl Into<Key>, value: impl Into<Value>) -> Self {
        self.spans.custom_attributes.push(KeyValue::new(key, value));
        self
    }

    /// Copies the caller's claim `claim` to the span attribute `attribute`
    /// when it is a string, number or boolean. Claims reach spans only:
    /// as metric attributes their values would be unbounded.
    pub fn with_claim_attribute(
        mut self,
        claim: impl Into<String>,
        attribute: impl Into<Key>,
    ) -> Self {
        self.spans
            .claim_attributes
            .push((claim.into(), attribute.into()));
        self
    }

    /// The span recording of `service`'s calls and the metrics hook, each
    /// when turned on.
    pub(crate) fn split(self, service: &str) -> (Option<Tracing>, Option<RequestMetrics>) {
        let tracing = self.enable_tracing.then(|| {
            let tracer = self.tracer.unwrap_or_else(|| {
                Arc::new(opentelemetry::global::tracer_with_scope(scope())) as Arc<dyn StartSpan>
            });
            Tracing::new(tracer, self.spans, service)
        });
        let metrics = self.enable_metrics.then(|| {
            let meter = self
                .meter
                .unwrap_or_else(|| opentelemetry::global::meter_with_scope(scope()));
            RequestMetrics::new(&meter)
        });
        (tracing, metrics)
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(SCOPE_VERSION)
        .build()
}

/// What dispatch spans carry beyond the reference's fixed attributes.
#[derive(Debug, Clone)]
struct SpanOptions {
    record_exceptions: bool,
    custom_attributes: Vec<KeyValue>,
    claim_attributes: Vec<(String, Key)>,
}

impl Default for SpanOptions {
    fn default() -> Self {
        Self {
            record_exceptions: true,
            custom_attributes: Vec::new(),
            claim_attributes: Vec::new(),
        }
    }
}

/// The work of two stretches of one call.
pub(crate) fn sum(a: &CallStats, b: &CallStats) -> CallStats {
    CallStats {
        input_batches: a.input_batches + b.input_batches,
        output_batches: a.output_batches + b.output_batches,
        input_rows: a.input_rows + b.input_rows,
        output_rows: a.output_rows + b.output_rows,
        input_bytes: a.input_bytes + b.input_bytes,
        output_bytes: a.output_bytes + b.output_bytes,
    }
}

/// A claim as the reference's attributes show it: Python's `str()` of a
/// scalar (so `True`, not `true`); objects, arrays and null are left out.
fn claim_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Bool(true) => Some("True".to_owned()),
        Json::Bool(false) => Some("False".to_owned()),
        Json::Number(n) => Some(n.to_string()),
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}
