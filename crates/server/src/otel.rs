//! OpenTelemetry for dispatch (feature `otel`): W3C trace-context
//! propagation into dispatch spans, the span attributes and exceptions the
//! reference records, and its request metrics.

use std::collections::HashMap;

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::Status;
use opentelemetry::{InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::Value as Json;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use vgirpc_wire::log::ErrorInfo;
use vgirpc_wire::metadata::{self, Metadata};

use crate::auth::AuthContext;
use crate::observe::{AuthFailure, CallRecord, CallStatus, DispatchHook};

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
/// Spans are the `tracing` spans every dispatch runs in, exported by a
/// `tracing-opentelemetry` layer the application installs; this
/// configuration decides what they carry and which metrics are recorded.
#[derive(Debug, Clone)]
pub struct OtelConfig {
    meter: Option<Meter>,
    enable_metrics: bool,
    spans: SpanOptions,
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            meter: None,
            enable_metrics: true,
            spans: SpanOptions::default(),
        }
    }
}

impl OtelConfig {
    /// Metrics through the global meter provider, exceptions recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records metrics through `provider` instead of the global one.
    pub fn with_meter_provider(mut self, provider: &impl MeterProvider) -> Self {
        self.meter = Some(provider.meter_with_scope(scope()));
        self
    }

    /// Records no metrics (spans keep their attributes).
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

    /// The span options and, when metrics are on, the hook recording them.
    pub(crate) fn split(self) -> (SpanOptions, Option<RequestMetrics>) {
        let metrics = self.enable_metrics.then(|| {
            let meter = self
                .meter
                .unwrap_or_else(|| opentelemetry::global::meter_with_scope(scope()));
            RequestMetrics::new(&meter)
        });
        (self.spans, metrics)
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(SCOPE_VERSION)
        .build()
}

/// What dispatch spans carry beyond their `tracing` fields.
#[derive(Debug, Clone)]
pub(crate) struct SpanOptions {
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

impl SpanOptions {
    /// Sets the attributes whose names are chosen at run time: the claim
    /// and custom attributes. The reference's fixed ones (method type,
    /// server id, the caller) are fields of the dispatch span itself.
    pub(crate) fn annotate(&self, span: &tracing::Span, auth: &AuthContext) {
        if span.is_disabled()
            || (self.claim_attributes.is_empty() && self.custom_attributes.is_empty())
        {
            return;
        }
        for (claim, attribute) in &self.claim_attributes {
            if let Some(value) = auth.claims.get(claim).and_then(claim_text) {
                span.set_attribute(attribute.clone(), value);
            }
        }
        for attribute in &self.custom_attributes {
            span.set_attribute(attribute.key.clone(), attribute.value.clone());
        }
    }

    /// Marks `span` as having succeeded.
    pub(crate) fn succeed(&self, span: &tracing::Span) {
        if !span.is_disabled() {
            span.set_status(Status::Ok);
        }
    }

    /// Marks `span` failed with `error`, as the reference's hook does.
    pub(crate) fn fail(&self, span: &tracing::Span, error: &ErrorInfo) {
        if span.is_disabled() {
            return;
        }
        span.set_status(Status::error(error.message.clone()));
        span.set_attribute("rpc.vgi_rpc.error_type", error.error_type.clone());
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

/// Counts calls and records their durations, with the reference's names,
/// units and attributes.
pub(crate) struct RequestMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    auth_failures: Counter<u64>,
}

impl RequestMetrics {
    fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter(REQUESTS_METRIC)
                .with_unit("{request}")
                .with_description("Number of RPC requests handled")
                .build(),
            duration: meter
                .f64_histogram(DURATION_METRIC)
                .with_unit("s")
                .with_description("Duration of RPC requests")
                .build(),
            auth_failures: meter
                .u64_counter(AUTH_FAILURE_METRIC)
                .with_unit("{failure}")
                .with_description("Number of authentication failures before RPC dispatch")
                .build(),
        }
    }
}

impl DispatchHook for RequestMetrics {
    fn on_call(&self, record: &CallRecord) {
        let status = match record.status {
            CallStatus::Ok => "ok",
            CallStatus::Error { .. } => "error",
        };
        let mut attributes = vec![
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", record.protocol.clone()),
            KeyValue::new("rpc.method", record.method.clone()),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
            KeyValue::new("status", status),
        ];
        if let Some(domain) = record.auth.domain.as_deref().filter(|d| !d.is_empty()) {
            attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.to_owned()));
        }
        self.requests.add(1, &attributes);
        self.duration
            .record(record.duration.as_secs_f64(), &attributes);
    }

    fn wants_request_data(&self) -> bool {
        false
    }

    fn on_auth_failure(&self, failure: &AuthFailure<'_>) {
        self.auth_failures.add(
            1,
            &[
                KeyValue::new("rpc.system", "vgi_rpc"),
                KeyValue::new("rpc.service", failure.protocol.to_owned()),
                KeyValue::new("error.type", failure.error_type.to_owned()),
            ],
        );
    }
}

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
