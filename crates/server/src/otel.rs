//! OpenTelemetry for dispatch (feature `otel`): W3C trace-context
//! propagation into dispatch spans, the span attributes and exceptions the
//! reference records, and its request metrics.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::Status;
use opentelemetry::{InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::Value as Json;
use tracing::field::{Field, FieldSet};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use vgirpc_wire::describe::MethodType;
use vgirpc_wire::log::ErrorInfo;
use vgirpc_wire::metadata::{self, Metadata};

use crate::answer::Answer;
use crate::auth::AuthContext;
use crate::observe::{AuthFailure, CallRecord, CallStats, CallStatus, DispatchHook};

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

    /// Ends a call's span as its answer says: failed with the answer's
    /// error, or succeeded, with the work the call's record counted.
    pub(crate) fn end(&self, span: &tracing::Span, answer: &Answer) {
        let stats = answer
            .record
            .as_ref()
            .map(|record| record.stats)
            .unwrap_or_default();
        match &answer.failure {
            Some((_, error)) => self.fail(span, error, &stats),
            None => self.succeed(span, &stats),
        }
    }

    /// Marks `span` as having succeeded, with the work done.
    pub(crate) fn succeed(&self, span: &tracing::Span, stats: &CallStats) {
        record_outcome(span, Some("ok"), stats);
    }

    /// Marks `span` failed with `error`, as the reference's hook does.
    pub(crate) fn fail(&self, span: &tracing::Span, error: &ErrorInfo, stats: &CallStats) {
        if span.is_disabled() {
            return;
        }
        record_outcome(span, None, stats);
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

/// Fills the outcome fields of a dispatch span (its status, when given,
/// and the reference's six counters) in one record: each separate record
/// or attribute is a lookup of the span and a lock of its data.
fn record_outcome(span: &tracing::Span, status: Option<&str>, stats: &CallStats) {
    let Some(metadata) = span.metadata() else {
        return;
    };
    let fields = metadata.fields();
    let Some(
        [
            status_code,
            input_batches,
            output_batches,
            input_rows,
            output_rows,
            input_bytes,
            output_bytes,
        ],
    ) = outcome_fields(fields)
    else {
        return;
    };
    // As i64: the exporter takes those as integers, where a u64 goes
    // through its text form.
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let counts = [
        count(stats.input_batches),
        count(stats.output_batches),
        count(stats.input_rows),
        count(stats.output_rows),
        count(stats.input_bytes),
        count(stats.output_bytes),
    ];
    let values: [(&Field, Option<&dyn tracing::Value>); 7] = [
        (
            &status_code,
            status.as_ref().map(|s| s as &dyn tracing::Value),
        ),
        (&input_batches, Some(&counts[0])),
        (&output_batches, Some(&counts[1])),
        (&input_rows, Some(&counts[2])),
        (&output_rows, Some(&counts[3])),
        (&input_bytes, Some(&counts[4])),
        (&output_bytes, Some(&counts[5])),
    ];
    span.record_all(&fields.value_set(&values));
}

/// The outcome fields of a dispatch span, in [`record_outcome`]'s order.
const OUTCOME_FIELDS: [&str; 7] = [
    "otel.status_code",
    "rpc.vgi_rpc.input_batches",
    "rpc.vgi_rpc.output_batches",
    "rpc.vgi_rpc.input_rows",
    "rpc.vgi_rpc.output_rows",
    "rpc.vgi_rpc.input_bytes",
    "rpc.vgi_rpc.output_bytes",
];

/// Finds the outcome fields in `fields`. Every dispatch span is made by
/// one macro, so their positions are found by name once and then only
/// checked: a search by name per field per call compared dozens of
/// strings sharing the `rpc.vgi_rpc.` prefix.
fn outcome_fields(fields: &FieldSet) -> Option<[Field; 7]> {
    static POSITIONS: OnceLock<Option<[usize; 7]>> = OnceLock::new();
    let positions = POSITIONS.get_or_init(|| {
        let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
        let mut positions = [0; 7];
        for (position, name) in positions.iter_mut().zip(OUTCOME_FIELDS) {
            *position = names.iter().position(|n| *n == name)?;
        }
        Some(positions)
    });
    let at_positions = positions.and_then(|positions| {
        all_found(positions.map(|p| fields.iter().nth(p))).filter(|found| {
            found
                .iter()
                .zip(OUTCOME_FIELDS)
                .all(|(f, name)| f.name() == name)
        })
    });
    at_positions.or_else(|| all_found(OUTCOME_FIELDS.map(|name| fields.field(name))))
}

fn all_found([a, b, c, d, e, f, g]: [Option<Field>; 7]) -> Option<[Field; 7]> {
    Some([a?, b?, c?, d?, e?, f?, g?])
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

/// Counts calls and records their durations, with the reference's names,
/// units and attributes.
pub(crate) struct RequestMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    auth_failures: Counter<u64>,
    /// The attributes of each method's calls, made once: building them
    /// per call (two strings copied, a vector) was a good part of what
    /// metrics cost a call.
    attributes: RwLock<HashMap<String, MethodAttributes>>,
}

/// At most this many methods have cached attributes; records of further
/// names (a hook fed by hand) get theirs built per call.
const CACHED_METHODS: usize = 1024;

/// One method's metric attributes, for each outcome.
struct MethodAttributes {
    protocol: String,
    method_type: MethodType,
    ok: Vec<KeyValue>,
    error: Vec<KeyValue>,
}

impl MethodAttributes {
    fn new(record: &CallRecord) -> Self {
        let fixed = [
            KeyValue::new("rpc.system", "vgi_rpc"),
            KeyValue::new("rpc.service", record.protocol.clone()),
            KeyValue::new("rpc.method", record.method.clone()),
            KeyValue::new("rpc.vgi_rpc.method_type", record.method_type.as_str()),
        ];
        let with_status = |status: &'static str| {
            let mut attributes = fixed.to_vec();
            attributes.push(KeyValue::new("status", status));
            attributes
        };
        Self {
            protocol: record.protocol.clone(),
            method_type: record.method_type,
            ok: with_status("ok"),
            error: with_status("error"),
        }
    }

    fn describes(&self, record: &CallRecord) -> bool {
        self.protocol == record.protocol && self.method_type == record.method_type
    }

    fn for_status(&self, status: &CallStatus) -> &[KeyValue] {
        match status {
            CallStatus::Ok => &self.ok,
            CallStatus::Error { .. } => &self.error,
        }
    }
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
            attributes: RwLock::new(HashMap::new()),
        }
    }

    fn record(&self, record: &CallRecord, attributes: &[KeyValue]) {
        let domain = record.auth.domain.as_deref().filter(|d| !d.is_empty());
        let seconds = record.duration.as_secs_f64();
        match domain {
            None => {
                self.requests.add(1, attributes);
                self.duration.record(seconds, attributes);
            }
            Some(domain) => {
                let mut attributes = attributes.to_vec();
                attributes.push(KeyValue::new("rpc.vgi_rpc.auth.domain", domain.to_owned()));
                self.requests.add(1, &attributes);
                self.duration.record(seconds, &attributes);
            }
        }
    }
}

impl DispatchHook for RequestMetrics {
    fn on_call(&self, record: &CallRecord) {
        {
            let cached = self
                .attributes
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(method) = cached.get(&record.method)
                && method.describes(record)
            {
                return self.record(record, method.for_status(&record.status));
            }
        }
        let method = MethodAttributes::new(record);
        self.record(record, method.for_status(&record.status));
        let mut cached = self
            .attributes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cached.len() < CACHED_METHODS {
            cached.insert(record.method.clone(), method);
        }
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
