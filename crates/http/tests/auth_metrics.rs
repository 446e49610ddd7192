//! With OpenTelemetry metrics on, every request the authentication layer
//! refuses counts in `rpc.server.auth_failure`, as in the reference: its
//! unit, attributes, and `error.type` telling credentials missing or not
//! understood (`ValueError`) from credentials refused (`PermissionError`).

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "auth_support"]
mod auth_support {
    pub(crate) mod caller;
    pub(crate) mod request;
    pub(crate) mod who;
}
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::collections::BTreeMap;

use auth_support::caller::{caller, whoami};
use auth_support::who::{serve, who};
use http::StatusCode;
use http::request::Parts;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use tokio::net::TcpListener;
use vgirpc::otel::{AUTH_FAILURE_METRIC, OtelConfig};
use vgirpc_http::{AuthContext, AuthRejection, HttpConfig, HttpServer};

/// Accepts `X-Key: good`; refuses `X-Key: banned` for good, and anything
/// else as not understood.
fn keys(request: &Parts) -> Result<AuthContext, AuthRejection> {
    match request.headers.get("x-key").and_then(|v| v.to_str().ok()) {
        Some("good") => Ok(AuthContext::authenticated("key", "kim")),
        Some("banned") => Err(AuthRejection::forbidden("key revoked")),
        _ => Err(AuthRejection::new("no key")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_count_as_auth_failures_by_error_type() {
    let exporter = InMemoryMetricExporter::default();
    let meter = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let server = who();
    server.instrument_otel(OtelConfig::new().with_meter_provider(&meter));
    let http = HttpServer::new(server, HttpConfig::new().with_authenticate(keys)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve(listener, http);

    for headers in [vec![], vec![("x-key", "wrong")], vec![("x-key", "banned")]] {
        let reply = whoami(addr, &headers).await;
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
    }
    assert_eq!(
        caller(&whoami(addr, &[("x-key", "good")]).await).principal(),
        "kim"
    );

    meter.force_flush().unwrap();
    let exported = exporter.get_finished_metrics().unwrap();
    let metric = exported
        .last()
        .unwrap()
        .scope_metrics()
        .filter(|scope| scope.scope().name() == "vgi_rpc")
        .flat_map(|scope| scope.metrics())
        .find(|metric| metric.name() == AUTH_FAILURE_METRIC)
        .expect("no auth failure metric");
    assert_eq!(metric.unit(), "{failure}");
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else {
        panic!("not a counter: {:?}", metric.data());
    };
    let mut counts: Vec<(BTreeMap<String, String>, u64)> = sum
        .data_points()
        .map(|point| {
            let attributes = point
                .attributes()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect();
            (attributes, point.value())
        })
        .collect();
    counts.sort();
    let expected = |error_type: &str, count: u64| {
        let attributes = [
            ("error.type", error_type),
            ("rpc.service", "Who"),
            ("rpc.system", "vgi_rpc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        (attributes, count)
    };
    // The accepted call is a request, not a failure.
    assert_eq!(
        counts,
        vec![expected("PermissionError", 1), expected("ValueError", 2)]
    );
}
