//! Prometheus metrics of one HTTP server (feature `prometheus`): what it
//! counts, and the text a scrape of [`MetricsConfig::with_path`] reads.
//! The scrape is a route of the endpoints, like `health`, so it passes the
//! same layers and adds none.
//!
//! Calls are counted from the [`CallRecord`]s the server core hands its
//! hooks, so the numbers agree with the access log; the HTTP crate adds
//! what only it sees: calls in flight, stream-state tokens it opened or
//! refused, and (on sticky servers) the sessions held in this worker.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use vgirpc::{CallRecord, CallStatus, DispatchHook, Server};
use vgirpc_token::TokenError;

use crate::error::HttpError;

/// Where a scrape finds the metrics unless configured otherwise.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// The `Content-Type` of a scrape: the OpenMetrics text format, which
/// Prometheus asks for first.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric name starts with it, after `rpc.system` in the traces.
const PREFIX: &str = "vgi_rpc";

/// Upper bounds of the duration buckets, in seconds: Prometheus' usual
/// defaults, from a small call's few milliseconds to a long stream turn.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The Prometheus endpoint of an [`HttpServer`](crate::HttpServer), off
/// unless [`HttpConfig::with_metrics`](crate::HttpConfig::with_metrics)
/// sets one.
///
/// It answers `GET` on its own path, outside the prefix (other methods
/// there get `405`), and by default without authentication: scrapers rarely hold the callers' credentials,
/// and the numbers name methods, not callers or data. A server reachable
/// by untrusted peers either puts the path behind its authenticator
/// ([`MetricsConfig::with_authentication`]) or keeps it off the public
/// listener's routes at its proxy.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub(crate) path: String,
    pub(crate) authenticated: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_METRICS_PATH.to_owned(),
            authenticated: false,
        }
    }
}

impl MetricsConfig {
    /// Metrics at [`DEFAULT_METRICS_PATH`], without authentication.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve the metrics at `path` (absolute, not under the prefix). It
    /// must not be a path the server already answers `GET` on.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Whether a scrape must pass the server's authenticator like a call
    /// (default `false`); without an authenticator it changes nothing.
    pub fn with_authentication(mut self, authenticated: bool) -> Self {
        self.authenticated = authenticated;
        self
    }

    /// Refuses a path that is not absolute or that the server already
    /// answers `GET` on, which the scrape would hide.
    pub(crate) fn check(&self, prefix: &str, server: &Server) -> Result<(), HttpError> {
        let path = self.path.as_str();
        let taken = match path.strip_prefix(prefix) {
            Some("" | "/") => true,
            Some(rest) => rest.strip_prefix('/').is_some_and(|name| {
                matches!(name, "health" | "describe")
                    || name.starts_with("_oauth/")
                    || server.method_type(name).is_some()
            }),
            None => false,
        };
        if !path.starts_with('/') || taken || path.starts_with("/.well-known/") {
            return Err(HttpError::Config(format!(
                "metrics path {path:?} must be absolute and not a route of the server"
            )));
        }
        Ok(())
    }
}

/// The labels of a call's count and duration. Methods are the service's
/// own (a call to an unknown method reaches no hook), so the series stay
/// few whatever peers send.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    method: String,
    method_type: &'static str,
    status: &'static str,
}

/// Why a stream-state token opened or not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TokenLabels {
    result: &'static str,
}

/// The metrics of one server, shared by its hook, its endpoints and its
/// scrape path.
#[derive(Debug)]
pub(crate) struct Metrics {
    path: String,
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    durations: Family<CallLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    tokens: Family<TokenLabels, Counter>,
}

impl Metrics {
    /// The metrics of a server, scraped at `path`; with `sessions`, the
    /// sticky registry whose size each scrape reads.
    pub(crate) fn new(path: &str, sessions: Option<vgirpc_session::Registry>) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<CallLabels, Counter>::default();
        registry.register(
            "requests",
            "Calls and HTTP stream turns served, by method, method type and outcome",
            requests.clone(),
        );
        let durations: Family<CallLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        registry.register_with_unit(
            "request_duration",
            "Time spent serving a call or HTTP stream turn",
            Unit::Seconds,
            durations.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Calls being served now",
            in_flight.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "stream_tokens",
            "Stream-state tokens presented, by whether they opened or why not",
            tokens.clone(),
        );
        if let Some(sessions) = sessions {
            registry.register_collector(Box::new(OpenSessions(sessions)));
        }
        Self {
            path: path.to_owned(),
            registry,
            requests,
            durations,
            in_flight,
            tokens,
        }
    }

    /// Where scrapes read the metrics.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Counts a call as in flight until the guard drops, however the call
    /// ends (a dropped connection or a panic included).
    pub(crate) fn call_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts an attempt to open a stream-state token.
    pub(crate) fn token_opened(&self, failure: Option<&TokenError>) {
        let result = match failure {
            None => "opened",
            Some(TokenError::Expired { .. }) => "expired",
            // Tampered bytes, another key and another caller's token all
            // fail the one tag check; nothing tells them apart.
            Some(TokenError::VerificationFailed) => "verification_failed",
            Some(TokenError::UnsupportedVersion { .. }) => "unsupported_version",
            Some(_) => "malformed",
        };
        self.tokens.get_or_create(&TokenLabels { result }).inc();
    }

    /// The OpenMetrics text of every metric, as a scrape reads it.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, nor can the metrics' encoders.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    fn record(&self, record: &CallRecord) {
        let labels = CallLabels {
            method: record.method.clone(),
            method_type: record.method_type.as_str(),
            status: match record.status {
                CallStatus::Ok => "ok",
                CallStatus::Error { .. } => "error",
            },
        };
        self.durations
            .get_or_create(&labels)
            .observe(record.duration.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }
}

/// The server's hook feeding [`Metrics`].
pub(crate) struct CallCounter(pub(crate) Arc<Metrics>);

impl DispatchHook for CallCounter {
    fn on_call(&self, record: &CallRecord) {
        self.0.record(record);
    }

    fn wants_request_data(&self) -> bool {
        false
    }
}

/// A call in flight; dropping it ends the count.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The sessions a sticky registry holds, read at each scrape: the registry
/// knows every way a session ends (close, TTL, drain), so nothing needs
/// counting on the way.
#[derive(Debug)]
struct OpenSessions(vgirpc_session::Registry);

impl Collector for OpenSessions {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(i64::try_from(self.0.len()).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "sessions_open",
            // A collector's help is written as given, without the full
            // stop the registry appends to its own metrics'.
            "Sticky sessions held in this worker.",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}
