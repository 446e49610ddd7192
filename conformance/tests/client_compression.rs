//! When our HTTP client compresses: never with a server on this host
//! unless asked to, since the loopback moves bytes faster than zstd
//! shrinks them, and as configured otherwise.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod in_process;
}

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use http::request::Parts;
use support::in_process::{conformance_server, serve_in_process};
use vgirpc::client::Client;
use vgirpc_client::http::HttpOptions;
use vgirpc_conformance::service::ConformanceServiceClient;
use vgirpc_http::{AuthContext, AuthRejection, HttpConfig, HttpServer};

/// The encoding headers of one request: `Content-Encoding`, `Accept-Encoding`.
type Seen = (Option<String>, Option<String>);

/// Our server in this process, recording the encoding headers of every
/// request it gets.
fn recording_server() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let record = move |request: &Parts| -> Result<AuthContext, AuthRejection> {
        let header = |name| {
            request
                .headers
                .get(name)
                .map(|v: &http::HeaderValue| v.to_str().unwrap_or("?").to_owned())
        };
        log.lock()
            .unwrap()
            .push((header(CONTENT_ENCODING), header(ACCEPT_ENCODING)));
        Ok(AuthContext::anonymous())
    };
    let server = HttpServer::new(
        conformance_server(),
        HttpConfig::new().with_authenticate(record),
    )
    .unwrap();
    (serve_in_process(server), seen)
}

/// 200,000 float64 that zstd shrinks well: sent compressed when the
/// client compresses at all.
fn compressible_batch() -> RecordBatch {
    let values: Float64Array = (0..200_000).map(|i| f64::from(i % 100)).collect();
    let schema = Schema::new(vec![Field::new("value", DataType::Float64, false)]);
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(values)]).unwrap()
}

/// Runs an exchange round with a large body and a large answer, and
/// returns what the server saw of it.
fn exchange_through(host: &str, port: u16, options: HttpOptions, seen: &Mutex<Vec<Seen>>) -> Seen {
    let url = format!("http://{host}:{port}");
    let mut svc = ConformanceServiceClient::new(Client::connect_http_with(&url, options).unwrap());
    let mut session = svc.exchange_scale(2.0).unwrap();
    let batch = compressible_batch();
    seen.lock().unwrap().clear();
    let out = session.exchange(&batch).unwrap();
    assert_eq!(out.num_rows(), batch.num_rows());
    let doubled = out
        .column(0)
        .as_primitive::<arrow_array::types::Float64Type>();
    assert_eq!(doubled.value(199_999), 198.0);
    drop(session);
    let produced: usize = svc
        .produce_large_batches(50_000, 2)
        .unwrap()
        .map(|batch| batch.unwrap().column(0).as_primitive::<Int64Type>().len())
        .sum();
    assert_eq!(produced, 100_000);
    seen.lock().unwrap()[0].clone()
}

#[test]
fn a_loopback_server_is_reached_uncompressed_unless_asked() {
    let (port, seen) = recording_server();
    for host in ["127.0.0.1", "localhost"] {
        let (content, accept) = exchange_through(host, port, HttpOptions::new(), &seen);
        assert_eq!((content, accept), (None, None), "{host}");
    }
    let (content, accept) = exchange_through(
        "127.0.0.1",
        port,
        HttpOptions::new().compress_loopback(true),
        &seen,
    );
    assert_eq!(content.as_deref(), Some("zstd"));
    assert_eq!(accept.as_deref(), Some("zstd"));
    let (content, accept) = exchange_through(
        "127.0.0.1",
        port,
        HttpOptions::new()
            .compress_loopback(true)
            .compression_level(None),
        &seen,
    );
    assert_eq!(content, None, "no level, no compressed requests");
    assert_eq!(
        accept.as_deref(),
        Some("zstd"),
        "answers are still welcome in zstd"
    );
}
