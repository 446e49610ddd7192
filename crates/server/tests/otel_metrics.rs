//! With the `otel` feature, `Server::instrument_otel` records the
//! reference's request metrics and dispatch spans, and failed calls carry
//! their exception: checked with the SDK's in-memory exporters after a known
//! sequence of calls from our client over a pipe.
#![cfg(feature = "otel")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceContextExt as _};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use vgirpc::client::{Client, ClientError};
use vgirpc::otel::{DURATION_METRIC, OtelConfig, REQUESTS_METRIC};
use vgirpc::transport::Call;
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    AuthContext, CallContext, OutputCollector, Peer, ProducerState, RpcError, Server, Stream,
    TransportKind,
};

/// Service used by this test.
#[vgirpc::service]
pub trait Calc {
    /// Adds.
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
    /// Always fails.
    fn fail(&self) -> Result<i64, RpcError>;
    /// Three batches.
    fn generate(&self) -> Result<Stream, RpcError>;
}

struct Impl;

/// The OpenTelemetry span current while `add` ran, by its first operand
/// (tests running at the same time use different ones).
static CURRENT_IN_ADD: Mutex<Vec<(i64, SpanContext)>> = Mutex::new(Vec::new());

struct Count(i64);

impl ProducerState for Count {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.0 == 3 {
            return out.finish();
        }
        self.0 += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.0]))])
    }
}

impl Calc for Impl {
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError> {
        let current = opentelemetry::Context::current()
            .span()
            .span_context()
            .clone();
        CURRENT_IN_ADD.lock().unwrap().push((a, current));
        Ok(a + b)
    }
    fn fail(&self) -> Result<i64, RpcError> {
        Err(RpcError::value_error("intentional error"))
    }
    fn generate(&self) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        Ok(Stream::producer(schema, Count(0)))
    }
}

/// A data point: its attributes, its value (sums) or count (histograms),
/// and its sum (histograms).
type Point = (BTreeMap<String, String>, u64, f64);

struct Telemetry {
    spans: InMemorySpanExporter,
    tracer: SdkTracerProvider,
    metrics: InMemoryMetricExporter,
    meter: SdkMeterProvider,
}

impl Telemetry {
    fn new() -> Self {
        let spans = InMemorySpanExporter::default();
        let tracer = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let metrics = InMemoryMetricExporter::default();
        let meter = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        Self {
            spans,
            tracer,
            metrics,
            meter,
        }
    }

    /// Spans and metrics both to the in-memory exporters.
    fn config(&self) -> OtelConfig {
        OtelConfig::new()
            .with_tracer_provider(&self.tracer)
            .with_meter_provider(&self.meter)
    }

    fn finished_spans(&self) -> Vec<SpanData> {
        self.tracer.force_flush().unwrap();
        self.spans.get_finished_spans().unwrap()
    }

    /// The unit and data points of the metric `name`.
    fn points(&self, name: &str) -> (String, Vec<Point>) {
        self.meter.force_flush().unwrap();
        let exported = self.metrics.get_finished_metrics().unwrap();
        let last = exported.last().expect("no metrics exported");
        let metric = last
            .scope_metrics()
            .filter(|scope| scope.scope().name() == "vgi_rpc")
            .flat_map(|scope| scope.metrics())
            .find(|metric| metric.name() == name)
            .unwrap_or_else(|| panic!("no metric {name}"));
        let attributes = |kvs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
            kvs.map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let points = match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                .data_points()
                .map(|p| (attributes(&mut p.attributes()), p.value(), 0.0))
                .collect(),
            AggregatedMetrics::F64(MetricData::Histogram(histogram)) => histogram
                .data_points()
                .map(|p| (attributes(&mut p.attributes()), p.count(), p.sum()))
                .collect(),
            other => panic!("unexpected data for {name}: {other:?}"),
        };
        (metric.unit().to_owned(), points)
    }
}

fn serve_pipe(
    server: Server,
) -> (
    CalcClient<impl vgirpc::client::Transport>,
    std::thread::JoinHandle<()>,
) {
    let (server_reads, client_writes) = std::io::pipe().unwrap();
    let (client_reads, server_writes) = std::io::pipe().unwrap();
    let serving = std::thread::spawn(move || {
        server
            .serve(server_reads, server_writes, TransportKind::Pipe)
            .unwrap();
    });
    (
        CalcClient::new(Client::from_io(client_reads, client_writes)),
        serving,
    )
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn span<'a>(spans: &'a [SpanData], method: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == format!("vgi_rpc/{method}"))
        .unwrap_or_else(|| panic!("no span for {method}"))
}

/// Calls `add(1, 1)` from `peer` without a transport, and hands its record
/// to the hooks as a transport does once the answer is written.
fn add_in_process(server: &Server, peer: &Peer) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Int64, false),
    ]));
    let one = || Arc::new(Int64Array::from(vec![1])) as _;
    let request = Request {
        method: "add".into(),
        params: RecordBatch::try_new(schema, vec![one(), one()]).unwrap(),
        metadata: Metadata::new(),
    };
    let Call::Answer(answer) = server.dispatch_from(request, peer) else {
        panic!("add is unary");
    };
    server.emit(answer.record.as_deref().unwrap());
}

#[test]
fn calls_are_counted_timed_and_traced_as_the_reference_does() {
    let telemetry = Telemetry::new();
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(
        telemetry
            .config()
            .with_custom_attribute("deployment.environment", "test"),
    );
    let (mut calc, serving) = serve_pipe(server);
    assert_eq!(calc.add(1, 2).unwrap(), 3);
    assert_eq!(calc.add(3, 4).unwrap(), 7);
    match calc.fail().unwrap_err() {
        ClientError::Remote { error_type, .. } => assert_eq!(error_type, "ValueError"),
        other => panic!("expected the server's error, got {other:?}"),
    }
    let produced: Vec<_> = calc.generate().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(produced.len(), 3);
    drop(calc);
    serving.join().unwrap();

    let base = |method: &str, method_type: &str, status: &str| {
        BTreeMap::from(
            [
                ("rpc.system", "vgi_rpc"),
                ("rpc.service", "Calc"),
                ("rpc.method", method),
                ("rpc.vgi_rpc.method_type", method_type),
                ("status", status),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
    };
    let (unit, mut requests) = telemetry.points(REQUESTS_METRIC);
    assert_eq!(unit, "{request}");
    requests.sort_by(|a, b| a.0.cmp(&b.0));
    let counts: Vec<_> = requests.iter().map(|(a, n, _)| (a.clone(), *n)).collect();
    assert_eq!(
        counts,
        vec![
            (base("add", "unary", "ok"), 2),
            (base("fail", "unary", "error"), 1),
            (base("generate", "stream", "ok"), 1),
        ]
    );
    let (unit, durations) = telemetry.points(DURATION_METRIC);
    assert_eq!(unit, "s");
    assert_eq!(durations.len(), 3);
    for (attributes, count, sum) in &durations {
        let expected = if attributes["rpc.method"] == "add" {
            2
        } else {
            1
        };
        assert_eq!(*count, expected, "{attributes:?}");
        assert!(*sum > 0.0 && *sum < 10.0, "{attributes:?}: {sum} s");
    }

    let spans = telemetry.finished_spans();
    let add = span(&spans, "add");
    assert_eq!(add.status, Status::Ok);
    assert_eq!(add.span_kind, SpanKind::Server);
    assert_eq!(add.instrumentation_scope.name(), "vgi_rpc");
    // What the method records joins the call's trace under its span.
    let in_add = CURRENT_IN_ADD
        .lock()
        .unwrap()
        .iter()
        .find(|(a, _)| *a == 3)
        .map(|(_, current)| current.clone())
        .unwrap();
    assert!(
        spans.iter().any(|s| s.name == "vgi_rpc/add"
            && s.span_context.span_id() == in_add.span_id()
            && s.span_context.trace_id() == in_add.trace_id()),
        "the span current in add(3, 4) is not an add span: {in_add:?}"
    );
    assert_eq!(attribute(add, "rpc.vgi_rpc.method_type").unwrap(), "unary");
    // The reference's counters of the call's work: one parameter row in,
    // one result row out.
    for (counter, expected) in [
        ("rpc.vgi_rpc.input_batches", "1"),
        ("rpc.vgi_rpc.output_batches", "1"),
        ("rpc.vgi_rpc.input_rows", "1"),
        ("rpc.vgi_rpc.output_rows", "1"),
    ] {
        assert_eq!(
            attribute(add, counter).as_deref(),
            Some(expected),
            "{counter}"
        );
    }
    assert!(
        attribute(add, "rpc.vgi_rpc.output_bytes")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.server_id").unwrap(),
        vgirpc::server_id()
    );
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.auth.authenticated").unwrap(),
        "false"
    );
    assert_eq!(attribute(add, "deployment.environment").unwrap(), "test");
    assert!(attribute(add, "rpc.vgi_rpc.auth.principal").is_none());

    let fail = span(&spans, "fail");
    assert_eq!(fail.status, Status::error("intentional error"));
    assert_eq!(
        attribute(fail, "rpc.vgi_rpc.error_type").unwrap(),
        "ValueError"
    );
    let exception = fail
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("no exception event");
    let exception: BTreeMap<_, _> = exception
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect();
    assert_eq!(exception["exception.type"], "ValueError");
    assert_eq!(exception["exception.message"], "intentional error");

    let generate = span(&spans, "generate");
    assert_eq!(generate.status, Status::Ok);
    // Three data batches, counted across the stream's steps.
    assert_eq!(
        attribute(generate, "rpc.vgi_rpc.output_rows").as_deref(),
        Some("3")
    );
    assert_eq!(
        attribute(generate, "rpc.vgi_rpc.method_type").unwrap(),
        "stream"
    );
}

#[test]
fn auth_reaches_span_attributes_and_the_metric_domain() {
    let telemetry = Telemetry::new();
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(
        telemetry
            .config()
            .with_claim_attribute("tenant", "rpc.vgi_rpc.auth.claim.tenant")
            .with_claim_attribute("level", "rpc.vgi_rpc.auth.claim.level")
            .with_claim_attribute("admin", "rpc.vgi_rpc.auth.claim.admin")
            .with_claim_attribute("groups", "rpc.vgi_rpc.auth.claim.groups")
            .with_claim_attribute("missing", "rpc.vgi_rpc.auth.claim.missing"),
    );
    let auth = AuthContext::authenticated("jwt", "alice")
        .with_claim("tenant", "acme")
        .with_claim("level", 42)
        .with_claim("admin", true)
        .with_claim("groups", serde_json::json!(["a", "b"]));
    let peer = Peer::anonymous(TransportKind::Http).with_auth(auth);
    add_in_process(&server, &peer);

    let spans = telemetry.finished_spans();
    let add = span(&spans, "add");
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.auth.principal").unwrap(),
        "alice"
    );
    assert_eq!(attribute(add, "rpc.vgi_rpc.auth.domain").unwrap(), "jwt");
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.auth.authenticated").unwrap(),
        "true"
    );
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.auth.claim.tenant").unwrap(),
        "acme"
    );
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.auth.claim.level").unwrap(),
        "42"
    );
    assert_eq!(
        attribute(add, "rpc.vgi_rpc.auth.claim.admin").unwrap(),
        "True"
    );
    assert!(attribute(add, "rpc.vgi_rpc.auth.claim.groups").is_none());
    assert!(attribute(add, "rpc.vgi_rpc.auth.claim.missing").is_none());

    let (_, requests) = telemetry.points(REQUESTS_METRIC);
    let [(attributes, 1, _)] = requests.as_slice() else {
        panic!("one call expected: {requests:?}");
    };
    assert_eq!(attributes["rpc.vgi_rpc.auth.domain"], "jwt");
    assert!(!attributes.contains_key("rpc.vgi_rpc.auth.claim.tenant"));
}

#[test]
fn each_domain_has_its_own_series_call_after_call() {
    let telemetry = Telemetry::new();
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(telemetry.config().without_tracing());
    let call = |auth: AuthContext| {
        add_in_process(
            &server,
            &Peer::anonymous(TransportKind::Unix).with_auth(auth),
        );
    };
    // Interleaved, so that each series is found again after the others
    // were made.
    for _ in 0..3 {
        call(AuthContext::authenticated("unix", "1000"));
        call(AuthContext::anonymous());
        call(AuthContext::authenticated("jwt", "alice"));
        call(AuthContext::authenticated("unix", "1001"));
    }

    let (_, requests) = telemetry.points(REQUESTS_METRIC);
    let mut by_domain = BTreeMap::new();
    for (attributes, count, _) in &requests {
        let domain = attributes.get("rpc.vgi_rpc.auth.domain").cloned();
        assert_eq!(attributes["rpc.method"], "add");
        assert_eq!(attributes["status"], "ok");
        assert!(by_domain.insert(domain, *count).is_none(), "{requests:?}");
    }
    let expected = BTreeMap::from([
        (None, 3),
        (Some("jwt".to_owned()), 3),
        (Some("unix".to_owned()), 6),
    ]);
    assert_eq!(by_domain, expected);
}

#[test]
fn domains_beyond_the_cache_are_still_counted() {
    let telemetry = Telemetry::new();
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(telemetry.config().without_tracing());
    // More domains than a method caches: the later ones go uncached.
    let domains: Vec<String> = (0..20).map(|n| format!("domain-{n}")).collect();
    for _ in 0..2 {
        for domain in &domains {
            let auth = AuthContext::authenticated(domain.clone(), "someone");
            add_in_process(
                &server,
                &Peer::anonymous(TransportKind::Http).with_auth(auth),
            );
        }
    }

    let (_, requests) = telemetry.points(REQUESTS_METRIC);
    let by_domain: BTreeMap<String, u64> = requests
        .iter()
        .map(|(attributes, count, _)| (attributes["rpc.vgi_rpc.auth.domain"].clone(), *count))
        .collect();
    let expected: BTreeMap<String, u64> = domains.into_iter().map(|d| (d, 2)).collect();
    assert_eq!(by_domain, expected);
}

#[test]
fn without_metrics_nothing_is_counted_and_spans_stay() {
    let telemetry = Telemetry::new();
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(
        telemetry
            .config()
            .without_metrics()
            .without_exception_events(),
    );
    let (mut calc, serving) = serve_pipe(server);
    calc.fail().unwrap_err();
    drop(calc);
    serving.join().unwrap();
    telemetry.meter.force_flush().unwrap();
    let exported = telemetry.metrics.get_finished_metrics().unwrap();
    assert!(
        exported
            .iter()
            .flat_map(|m| m.scope_metrics())
            .all(|scope| scope.metrics().next().is_none()),
        "{exported:?}"
    );
    let spans = telemetry.finished_spans();
    let fail = span(&spans, "fail");
    assert_eq!(fail.status, Status::error("intentional error"));
    assert!(fail.events.iter().all(|e| e.name != "exception"));
}

#[test]
fn without_tracing_calls_are_counted_and_no_span_is_made() {
    let telemetry = Telemetry::new();
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(telemetry.config().without_tracing());
    let (mut calc, serving) = serve_pipe(server);
    assert_eq!(calc.add(2, 2).unwrap(), 4);
    drop(calc);
    serving.join().unwrap();
    assert!(telemetry.finished_spans().is_empty());
    let (_, requests) = telemetry.points(REQUESTS_METRIC);
    assert_eq!(requests.len(), 1, "{requests:?}");
}
