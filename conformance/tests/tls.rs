//! HTTPS and HTTP/2: our client and the reference Python client calling
//! the conformance service over TLS (HTTP/2 by ALPN), h2c beside HTTP/1.1
//! on one plain port, client certificates, certificate reload, and a
//! handshake that never comes.
//!
//! Every certificate is made by the test; nothing leaves the machine.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod in_process;
}

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use http::{Request, Version};
use support::in_process::{conformance_server, serve_in_process};
use vgirpc_client::http::{HttpOptions, HttpTransport};
use vgirpc_client::{Client, ClientError};
use vgirpc_conformance::service::ConformanceServiceClient;
use vgirpc_http::{
    Authenticate, CertificateIdentity, ClientAuth, HttpConfig, HttpServer, RequestBody, TlsConfig,
    mtls_native,
};
use vgirpc_test_support::pki::Pki;

/// The HTTP versions of the requests a server received.
type Versions = Arc<Mutex<Vec<Version>>>;

/// Serves the conformance service under `/vgi` with `config` on a free
/// port, on a runtime of its own, until the test process ends.
fn start(config: HttpConfig) -> (u16, Versions, HttpServer) {
    let versions = Versions::default();
    let seen = versions.clone();
    let http = HttpServer::new(conformance_server(), config.with_prefix("/vgi"))
        .unwrap()
        .layer(tower::layer::layer_fn(move |inner| {
            let seen = seen.clone();
            tower::ServiceExt::map_request(inner, move |request: Request<RequestBody>| {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(request.version());
                request
            })
        }));
    let port = serve_in_process(http.clone());
    (port, versions, http)
}

fn tls(pki: &Pki) -> TlsConfig {
    TlsConfig::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap()
}

/// Options that trust `pki`'s CA alone.
fn trusting(pki: &Pki) -> HttpOptions {
    HttpOptions::new()
        .prefix("/vgi")
        .system_roots(false)
        .ca_certificate_pem(pki.ca_pem.as_bytes())
}

type Service = ConformanceServiceClient<HttpTransport>;

fn connect(url: &str, options: HttpOptions) -> Result<Service, ClientError> {
    Ok(ConformanceServiceClient::new(Client::connect_http_with(
        url, options,
    )?))
}

/// A unary call, a producer stream and an exchange stream, each checked.
fn exercise(service: &mut Service) {
    assert_eq!(service.echo_string("over tls".into()).unwrap(), "over tls");
    let mut produced = Vec::new();
    let mut stream = service.produce_n(4).unwrap();
    while let Some(batch) = stream.next_batch().unwrap() {
        produced.extend(
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
        );
    }
    drop(stream);
    assert_eq!(produced, [0, 1, 2, 3]);
    let mut stream = service.exchange_scale(2.0).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        false,
    )]));
    for values in [[1.0, 2.5], [-4.0, 0.5]] {
        let input = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Float64Array::from(values.to_vec()))],
        )
        .unwrap();
        let output = stream.exchange(&input).unwrap();
        let scaled: Vec<f64> = output
            .column(0)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec();
        assert_eq!(scaled, values.map(|v| v * 2.0));
    }
    stream.close().unwrap();
}

fn versions(seen: &Versions) -> Vec<Version> {
    std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner))
}

#[test]
fn https_carries_unary_producer_and_exchange_calls_over_http2() {
    let pki = Pki::generate();
    let (port, seen, _) = start(HttpConfig::new().with_tls(tls(&pki)));
    let url = format!("https://localhost:{port}");
    exercise(&mut connect(&url, trusting(&pki)).unwrap());
    let used = versions(&seen);
    assert!(!used.is_empty());
    assert!(used.iter().all(|v| *v == Version::HTTP_2), "{used:?}");

    // The same by IP address, which the certificate also names.
    let url = format!("https://127.0.0.1:{port}");
    exercise(&mut connect(&url, trusting(&pki)).unwrap());
}

#[test]
fn https_without_http2_speaks_http1() {
    let pki = Pki::generate();
    let (port, seen, _) = start(HttpConfig::new().with_tls(tls(&pki)).with_http2(false));
    exercise(&mut connect(&format!("https://localhost:{port}"), trusting(&pki)).unwrap());
    let used = versions(&seen);
    assert!(used.iter().all(|v| *v == Version::HTTP_11), "{used:?}");
}

#[test]
fn h2c_with_prior_knowledge_and_http1_share_one_plain_port() {
    let (port, seen, _) = start(HttpConfig::new());
    let url = format!("http://127.0.0.1:{port}");
    let options = HttpOptions::new().prefix("/vgi");
    exercise(&mut connect(&url, options.clone().http2_prior_knowledge(true)).unwrap());
    let used = versions(&seen);
    assert!(used.iter().all(|v| *v == Version::HTTP_2), "{used:?}");
    exercise(&mut connect(&url, options).unwrap());
    let used = versions(&seen);
    assert!(used.iter().all(|v| *v == Version::HTTP_11), "{used:?}");
}

/// The message of a failed call, with its sources.
fn failure(result: Result<String, ClientError>) -> String {
    let err = result.expect_err("the call must fail");
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[test]
fn a_server_whose_ca_the_client_does_not_trust_is_refused() {
    let pki = Pki::generate();
    let (port, _, _) = start(HttpConfig::new().with_tls(tls(&pki)));
    let stranger = Pki::generate_named("another CA");
    let mut service = connect(&format!("https://localhost:{port}"), trusting(&stranger)).unwrap();
    let message = failure(service.echo_string("x".into()));
    assert!(message.contains("certificate"), "{message}");
    // Plain HTTP to the TLS port gets no answer it could mistake for one.
    let mut plain = connect(
        &format!("http://127.0.0.1:{port}"),
        HttpOptions::new().prefix("/vgi"),
    )
    .unwrap();
    assert!(plain.echo_string("x".into()).is_err());
}

#[test]
fn required_client_certificates_are_checked_against_the_client_ca() {
    let pki = Pki::generate();
    let config = HttpConfig::new().with_tls(
        tls(&pki)
            .with_client_ca_pem(pki.ca_pem.as_bytes(), ClientAuth::Required)
            .unwrap(),
    );
    let (port, _, _) = start(config);
    let url = format!("https://localhost:{port}");

    // In TLS 1.3 the server refuses after the client's side of the
    // handshake is done: the client sees its connection closed.
    let mut anonymous = connect(&url, trusting(&pki)).unwrap();
    assert!(anonymous.echo_string("x".into()).is_err());

    let stranger = Pki::generate_named("another CA").client("mallory");
    let mut forged = connect(
        &url,
        trusting(&pki).client_certificate_pem(stranger.cert_pem, stranger.key_pem),
    )
    .unwrap();
    assert!(forged.echo_string("x".into()).is_err());

    let alice = pki.client("alice");
    let mut trusted = connect(
        &url,
        trusting(&pki).client_certificate_pem(alice.cert_pem, alice.key_pem),
    )
    .unwrap();
    exercise(&mut trusted);
}

#[test]
fn a_verified_client_certificate_names_the_caller() {
    let pki = Pki::generate();
    let principals: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = principals.clone();
    let by_subject = mtls_native(CertificateIdentity::subject());
    let config = HttpConfig::new()
        .with_tls(
            tls(&pki)
                .with_client_ca_pem(pki.ca_pem.as_bytes(), ClientAuth::Optional)
                .unwrap(),
        )
        .with_authenticate(move |request: &http::request::Parts| {
            let verdict = by_subject.authenticate(request);
            seen.lock().unwrap_or_else(PoisonError::into_inner).push(
                verdict
                    .as_ref()
                    .ok()
                    .and_then(|auth| auth.principal.clone()),
            );
            verdict
        });
    let (port, _, _) = start(config);
    let url = format!("https://localhost:{port}");
    let alice = pki.client("alice");
    let mut service = connect(
        &url,
        trusting(&pki).client_certificate_pem(alice.cert_pem, alice.key_pem),
    )
    .unwrap();
    assert_eq!(service.echo_string("hi".into()).unwrap(), "hi");
    let mut anonymous = connect(&url, trusting(&pki)).unwrap();
    let refused = failure(anonymous.echo_string("hi".into()));
    assert!(
        refused.contains("No client certificate presented"),
        "{refused}"
    );
    let seen = principals.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(seen.as_slice(), [Some("alice".to_owned()), None]);
}

#[test]
fn optional_client_certificates_let_anonymous_clients_in() {
    let pki = Pki::generate();
    let config = HttpConfig::new().with_tls(
        tls(&pki)
            .with_client_ca_pem(pki.ca_pem.as_bytes(), ClientAuth::Optional)
            .unwrap(),
    );
    let (port, _, _) = start(config);
    let url = format!("https://localhost:{port}");
    exercise(&mut connect(&url, trusting(&pki)).unwrap());
    let alice = pki.client("alice");
    let with_cert = trusting(&pki).client_certificate_pem(alice.cert_pem, alice.key_pem);
    exercise(&mut connect(&url, with_cert).unwrap());
}

#[test]
fn a_reloaded_certificate_serves_new_connections() {
    let dir = std::env::temp_dir().join(format!("vgirpc-tls-reload-{}", std::process::id()));
    let old = Pki::generate_named("old CA");
    let files = old.write_to(&dir).unwrap();
    let config = TlsConfig::from_pem_files(&files.server_cert, &files.server_key).unwrap();
    let (port, _, http) = start(HttpConfig::new().with_tls(config));
    let url = format!("https://localhost:{port}");
    exercise(&mut connect(&url, trusting(&old)).unwrap());

    let new = Pki::generate_named("new CA");
    std::fs::write(&files.server_key, "not a key").unwrap();
    let reload = http.tls_reload().expect("a TLS server has a reload handle");
    assert!(reload.reload().is_err(), "a broken key is refused");
    // The old certificate is still served.
    exercise(&mut connect(&url, trusting(&old)).unwrap());

    new.write_to(&dir).unwrap();
    reload.reload().unwrap();
    exercise(&mut connect(&url, trusting(&new)).unwrap());
    let mut stale = connect(&url, trusting(&old)).unwrap();
    assert!(stale.echo_string("x".into()).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_connection_that_never_finishes_its_handshake_is_closed_by_the_header_timeout() {
    let pki = Pki::generate();
    let config = HttpConfig::new()
        .with_tls(tls(&pki))
        .with_header_read_timeout(Some(Duration::from_millis(500)));
    let (port, _, _) = start(config);
    // The first bytes of a TLS record header, and then nothing.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut stalled, &[0x16, 0x03, 0x01]).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = stalled.read_to_end(&mut rest);
    assert!(
        closed.is_ok() || started.elapsed() < Duration::from_secs(9),
        "the stalled handshake was never closed"
    );
    // The server serves on.
    exercise(&mut connect(&format!("https://localhost:{port}"), trusting(&pki)).unwrap());
}

#[test]
fn the_reference_client_calls_over_https_trusting_our_ca() {
    let Some(bin) = vgirpc_conformance::reference::venv_bin() else {
        return;
    };
    let pki = Pki::generate();
    let (port, _, _) = start(HttpConfig::new().with_tls(tls(&pki)));
    let ca = std::env::temp_dir().join(format!("vgirpc-tls-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let script = "\
import sys, httpx
from vgi_rpc.conformance import ConformanceService
from vgi_rpc.http import http_connect
client = httpx.Client(base_url=sys.argv[1], verify=sys.argv[2])
with http_connect(ConformanceService, prefix='/vgi', client=client) as svc:
    assert svc.echo_string(value='from python') == 'from python'
    batches = list(svc.produce_n(count=3))
    assert [b.batch.column('index')[0].as_py() for b in batches] == [0, 1, 2]
    from vgi_rpc import AnnotatedBatch
    with svc.exchange_scale(factor=2.0) as stream:
        out = stream.exchange(AnnotatedBatch.from_pydict({'value': [1.5, -2.0]}))
        assert out.batch.column('value').to_pylist() == [3.0, -4.0], out
print('reference client ok')
";
    let output = Command::new(bin.join("python"))
        .args([
            "-c",
            script,
            &format!("https://localhost:{port}"),
            ca.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    std::fs::remove_file(&ca).unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("reference client ok"));
}
