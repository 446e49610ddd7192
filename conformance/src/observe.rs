//! What the worker reports beside its answers: diagnostics on stderr,
//! failed calls to Sentry when `SENTRY_DSN` is set, and with
//! `--observe-discard` Sentry and OpenTelemetry both on, bound to a
//! transport and exporters that drop what they are given, so that a
//! benchmark sees what reporting costs a call. `--observe-bare-span`
//! records one span per call through the OpenTelemetry SDK and nothing
//! else: the floor under the former, what the SDK alone costs a call.
//!
//! All of it is set up before the server is built: the server attaches its
//! Sentry reporting only when it finds a client bound then.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use vgirpc::otel::OtelConfig;
use vgirpc::{CallRecord, DispatchHook, Server};

/// What the worker reports, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporting {
    /// Failed calls to the Sentry project `SENTRY_DSN` names, if any.
    FromEnv,
    /// Sentry, dispatch spans and request metrics all on, every report
    /// dropped.
    Discard,
    /// One span per call, bare (a fixed name, no attributes, not made
    /// current), started and ended through the SDK and dropped; no Sentry
    /// and no metrics.
    BareSpan,
}

/// Held while the worker serves: dropping it flushes what Sentry still
/// has queued.
pub struct Observers {
    _sentry: Option<sentry::ClientInitGuard>,
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("sentry", &self._sentry.is_some())
            .field("tracer", &self.tracer.is_some())
            .field("meter", &self.meter.is_some())
            .finish()
    }
}

impl Observers {
    /// Installs the diagnostics and what `reporting` asks for.
    pub fn start(reporting: Reporting) -> Result<Self, String> {
        let stderr = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(
                EnvFilter::try_from_env("VGI_RPC_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
            );
        tracing_subscriber::registry().with(stderr).init();
        let discard = reporting == Reporting::Discard;
        // Each span is handed, as it ends, to an exporter that drops it.
        let tracer = (discard || reporting == Reporting::BareSpan).then(|| {
            SdkTracerProvider::builder()
                .with_simple_exporter(DiscardSpans)
                .build()
        });
        let meter = discard.then(|| {
            SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(DiscardMetrics).build())
                .build()
        });
        let sentry = match reporting {
            Reporting::FromEnv => sentry_from_env()?,
            Reporting::Discard => Some(discard_sentry()),
            Reporting::BareSpan => None,
        };
        Ok(Self {
            _sentry: sentry,
            tracer,
            meter,
        })
    }

    /// Adds the OpenTelemetry spans and metrics when they are on.
    pub fn instrument(&self, server: &Server) {
        let Some(tracer) = &self.tracer else {
            return;
        };
        match &self.meter {
            Some(meter) => server.instrument_otel(
                OtelConfig::new()
                    .with_tracer_provider(tracer)
                    .with_meter_provider(meter),
            ),
            // Spans without metrics are the bare spans.
            None => server.add_hook(BareSpans(tracer.tracer("vgi_rpc"))),
        }
    }
}

/// Starts and ends one span per call, with nothing around it.
struct BareSpans(SdkTracer);

impl DispatchHook for BareSpans {
    fn on_call(&self, _: &CallRecord) {
        self.0.start("vgi_rpc/call").end();
    }

    fn wants_request_data(&self) -> bool {
        false
    }
}

/// A client for the project `SENTRY_DSN` names, when it names one.
fn sentry_from_env() -> Result<Option<sentry::ClientInitGuard>, String> {
    let Some(dsn) = std::env::var("SENTRY_DSN")
        .ok()
        .filter(|dsn| !dsn.trim().is_empty())
    else {
        return Ok(None);
    };
    let dsn = dsn
        .trim()
        .parse()
        .map_err(|err| format!("SENTRY_DSN: {err}"))?;
    // Sentry's reqwest is built without a crypto provider of its own, so
    // that the process keeps to the one the workspace chose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    Ok(Some(sentry::init(options)))
}

/// A client that reports as a real one does and drops every envelope.
fn discard_sentry() -> sentry::ClientInitGuard {
    let transport: Arc<dyn sentry::TransportFactory> = Arc::new(Arc::new(DiscardEnvelopes));
    let mut options = sentry::ClientOptions::default();
    // Never contacted: the transport sends nothing.
    options.dsn = "http://discard@127.0.0.1:9/1".parse().ok();
    options.transport = Some(transport);
    sentry::init(options)
}

struct DiscardEnvelopes;

impl sentry::Transport for DiscardEnvelopes {
    fn send_envelope(&self, _: sentry::Envelope) {}
}

#[derive(Debug)]
struct DiscardSpans;

impl SpanExporter for DiscardSpans {
    async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

#[derive(Debug)]
struct DiscardMetrics;

impl PushMetricExporter for DiscardMetrics {
    async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}
