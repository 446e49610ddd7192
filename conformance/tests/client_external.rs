//! The client's side of externalization through the shared fetcher:
//! externalized responses fetched over HTTPS with the client's own trust
//! settings, a location that is missing, cut short or not Arrow reported
//! as such, and requests above the server's cap uploaded to a vended URL
//! and sent as pointer batches (the `413` path).
//!
//! The object store is a small HTTP(S) server in this process, so nothing
//! else needs to run.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod in_process;
}

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::in_process::{conformance_server, serve_in_process};
use vgirpc::client::{Client, ClientError};
use vgirpc::wire::metadata;
use vgirpc_client::http::{HttpOptions, HttpTransport};
use vgirpc_conformance::service::ConformanceServiceClient;
use vgirpc_http::{
    ExternalConfig, ExternalStorage, HttpConfig, HttpError, HttpServer, UploadUrl,
    UploadUrlProvider,
};
use vgirpc_test_support::pki::Pki;

/// Objects kept in memory and served over HTTP or HTTPS: `PUT` stores,
/// `GET` and `HEAD` serve. Three paths answer badly on purpose:
/// `/missing` (404 with an S3 error body), `/truncated` (a body cut
/// short of its `Content-Length`) and `/not-arrow`.
#[derive(Default)]
struct ObjectStore {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    base: Mutex<String>,
    next: AtomicUsize,
    puts: AtomicUsize,
    /// When set, uploads by the server are stored but pointed here.
    misdirect: Mutex<Option<&'static str>>,
}

impl ObjectStore {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Arc<Self> {
        let store = Arc::new(Self::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        *store.base.lock().unwrap() = format!("{scheme}://{}", listener.local_addr().unwrap());
        let serving = store.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (store, tls) = (serving.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    Some(config) => {
                        let connection = rustls::ServerConnection::new(config).unwrap();
                        store.serve(rustls::StreamOwned::new(connection, stream));
                    }
                    None => store.serve(stream),
                });
            }
        });
        store
    }

    fn base(&self) -> String {
        self.base.lock().unwrap().clone()
    }

    fn fresh_url(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        format!("{}/objects/{n}?X-Amz-Signature=secret", self.base())
    }

    /// One request per connection.
    fn serve(&self, stream: impl Read + Write) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("").to_owned();
        let mut answer = |status: &str, body: &[u8], sent: usize| {
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let stream = reader.get_mut();
            let _ = stream.write_all(head.as_bytes());
            if method != "HEAD" {
                let _ = stream.write_all(&body[..sent.min(body.len())]);
            }
            let _ = stream.flush();
        };
        match (method, path.as_str()) {
            ("PUT", _) => {
                self.puts.fetch_add(1, Ordering::SeqCst);
                self.objects.lock().unwrap().insert(path, body);
                answer("200 OK", b"", 0);
            }
            (_, "/missing") => {
                let error = b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
                answer("404 Not Found", error, usize::MAX);
            }
            (_, "/truncated") => answer("200 OK", &[0; 1000], 10),
            (_, "/not-arrow") => answer("200 OK", b"<html>a login page</html>", usize::MAX),
            _ => match self.objects.lock().unwrap().get(&path).cloned() {
                Some(object) => answer("200 OK", &object, usize::MAX),
                None => answer("404 Not Found", b"", 0),
            },
        }
    }
}

impl ExternalStorage for ObjectStore {
    fn upload(&self, data: Vec<u8>, _encoding: Option<&str>) -> Result<String, HttpError> {
        let url = self.fresh_url();
        let path = url.split('?').next().unwrap().replace(&self.base(), "");
        self.objects.lock().unwrap().insert(path, data);
        Ok(match *self.misdirect.lock().unwrap() {
            Some(path) => format!("{}{path}", self.base()),
            None => url,
        })
    }
}

impl UploadUrlProvider for ObjectStore {
    fn upload_url(&self) -> Result<UploadUrl, HttpError> {
        let url = self.fresh_url();
        Ok(UploadUrl {
            upload_url: url.clone(),
            download_url: url,
            expires_at: SystemTime::now() + Duration::from_secs(600),
        })
    }
}

fn tls_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(pki.server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

fn in_process_server(config: HttpConfig) -> String {
    let http = HttpServer::new(conformance_server(), config).unwrap();
    format!("http://127.0.0.1:{}", serve_in_process(http))
}

fn client(url: &str, options: HttpOptions) -> ConformanceServiceClient<HttpTransport> {
    ConformanceServiceClient::new(Client::connect_http_with(url, options).unwrap())
}

/// A server externalizing every batch of 1 KiB or more into `store`.
fn externalizing(store: &Arc<ObjectStore>) -> String {
    let external = ExternalConfig::new(store.clone())
        .with_threshold(1024)
        .allow_any_url();
    in_process_server(HttpConfig::new().with_external(external))
}

#[test]
fn an_externalized_response_is_fetched_over_https_with_the_clients_trust() {
    let pki = Pki::generate();
    let store = ObjectStore::start(Some(tls_config(&pki)));
    let url = externalizing(&store);

    let mut svc = client(
        &url,
        HttpOptions::new().ca_certificate_pem(pki.ca_pem.as_bytes()),
    );
    assert_eq!(svc.oversized_unary(100_000).unwrap().len(), 100_000);
    let mut params = echo_params("x".repeat(5000));
    let raw = svc.dynamic().call("echo_string", &params).unwrap();
    let source = raw.metadata.get(metadata::LOCATION_SOURCE).unwrap_or("");
    assert!(source.starts_with("https://"), "{:?}", raw.metadata);
    assert_eq!(raw.batch.column(0).as_string::<i32>().value(0).len(), 5000);

    // Without the test CA the store is not trusted, and the error says so.
    let mut untrusting = client(&url, HttpOptions::new().system_roots(false));
    params = echo_params("x".repeat(5000));
    match untrusting.dynamic().call("echo_string", &params) {
        Err(ClientError::External { message, .. }) => {
            assert!(message.contains("TLS handshake failed"), "{message}");
            assert!(message.contains("UnknownIssuer"), "{message}");
        }
        other => panic!("expected an untrusted store, got {other:?}"),
    }
}

fn echo_params(value: String) -> RecordBatch {
    let schema = Schema::new(vec![Field::new("value", DataType::Utf8, false)]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(arrow_array::StringArray::from(vec![value]))],
    )
    .unwrap()
}

#[test]
fn a_bad_location_is_reported_for_what_it_is() {
    let store = ObjectStore::start(None);
    let url = externalizing(&store);
    let mut svc = client(&url, HttpOptions::new());
    let cases = [
        (
            "/missing",
            "404 Not Found (NoSuchKey: The specified key does not exist.)",
        ),
        ("/truncated", "truncated body: 10 of 1000 bytes arrived"),
        // The pointer's SHA-256 is what tells a page from the stream.
        ("/not-arrow", "SHA-256 checksum mismatch"),
    ];
    for (path, expected) in cases {
        *store.misdirect.lock().unwrap() = Some(path);
        match svc.oversized_unary(100_000) {
            Err(ClientError::External { url, message }) => {
                assert!(url.ends_with(path), "{url}");
                assert!(message.contains(expected), "{path}: {message}");
            }
            other => panic!("{path}: expected a failed fetch, got {other:?}"),
        }
    }
}

/// The requests of [`a_request_above_the_cap_goes_by_an_upload_url`]
/// against `capped`: answered as `uncapped` answers them, each large
/// request by one more upload (`uploads` counts them, where it can).
fn check_uploads(capped: &str, uncapped: &str, uploads: &dyn Fn() -> Option<usize>) {
    // Uncompressed, so the body really is above the cap.
    let options = HttpOptions::new().compression_level(None);
    let value: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let expected = client(uncapped, options.clone())
        .echo_string(value.clone())
        .unwrap();
    let mut svc = client(capped, options.clone());
    let before = uploads();
    let counted = |n: usize| before.map(|b| b + n);
    let requests = |svc: &mut ConformanceServiceClient<HttpTransport>| {
        svc.dynamic().transport().requests_sent()
    };
    assert_eq!(svc.echo_string(value.clone()).unwrap(), expected);
    assert_eq!(uploads(), counted(1), "one upload");
    // Refused, upload URL, pointer; then the cap is known and the refusal
    // is skipped.
    assert_eq!(requests(&mut svc), 3);
    assert_eq!(svc.echo_string(value.clone()).unwrap(), expected);
    assert_eq!(requests(&mut svc), 5);
    assert_eq!(uploads(), counted(2));
    // A small request still goes inline.
    assert_eq!(svc.echo_string("small".into()).unwrap(), "small");
    assert_eq!(uploads(), counted(2));

    // An exchange turn above the cap goes the same way, state token and all.
    let values: Vec<f64> = (0..10_000).map(f64::from).collect();
    let input = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Float64,
            true,
        )])),
        vec![Arc::new(Float64Array::from(values))],
    )
    .unwrap();
    let mut session = svc.exchange_accumulate().unwrap();
    for turn in 1..=2 {
        let out = session.exchange(&input).unwrap();
        let sum = out.column_by_name("running_sum").unwrap();
        let expected = f64::from(turn) * 49_995_000.0;
        assert_eq!(sum.as_primitive::<Float64Type>().value(0), expected);
    }
    drop(session);
    assert_eq!(uploads(), counted(4), "one upload per turn");

    // Turned off, the 413 is the caller's.
    let mut inline_only = client(capped, options.upload_large_requests(false));
    match inline_only.echo_string(value) {
        Err(ClientError::Http { status: 413, .. }) => {}
        other => panic!("expected HTTP 413, got {other:?}"),
    }
}

#[test]
fn a_request_above_the_cap_goes_by_an_upload_url() {
    let store = ObjectStore::start(None);
    let uncapped = in_process_server(HttpConfig::new());
    let capped = in_process_server(
        HttpConfig::new()
            .with_max_request_bytes(4096)
            .with_upload_urls(store.clone(), Some(64 << 20))
            .with_external(ExternalConfig::new(store.clone()).allow_any_url()),
    );
    check_uploads(&capped, &uncapped, &|| {
        Some(store.puts.load(Ordering::SeqCst))
    });
}

/// The reference's HTTP server with a 4 KiB request cap, vending upload
/// URLs into its in-memory object store and resolving pointers from it.
const REFERENCE_CAPPED: &str = "\
import socket, waitress
from vgi_rpc.conformance import ConformanceService, ConformanceServiceImpl
from vgi_rpc.conformance.fake_storage import FakeStorageBackend, serve_in_thread
from vgi_rpc.external import ServerExternalConfig
from vgi_rpc.http import make_wsgi_app
from vgi_rpc.rpc import RpcServer
base, _stop = serve_in_thread()
backend = FakeStorageBackend(base)
external = ServerExternalConfig(storage=backend, url_validator=None)
server = RpcServer(ConformanceService, ConformanceServiceImpl(), external_location=external)
app = make_wsgi_app(server, max_request_bytes=4096, upload_url_provider=backend, token_key=b'k' * 32)
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
print(f'PORT:{port}', flush=True)
waitress.serve(app, host='127.0.0.1', port=port, _quiet=True)
";

/// A process this test started; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_reference_server_takes_large_requests_by_upload_url() {
    let Some(bin) = vgirpc_conformance::reference::venv_bin() else {
        eprintln!("no reference venv: skipped (cargo xtask conformance makes it)");
        return;
    };
    let mut command = Command::new(bin.join("python"));
    // The reference warns of its web framework's deprecations on every 413.
    command.args(["-W", "ignore", "-c", REFERENCE_CAPPED]);
    command.stdout(Stdio::piped()).stdin(Stdio::null());
    let mut process = Process(command.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(process.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().strip_prefix("PORT:").unwrap().parse().unwrap();
    // The reference announces the port just before it binds.
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let uncapped = in_process_server(HttpConfig::new());
    check_uploads(&format!("http://127.0.0.1:{port}"), &uncapped, &|| None);
}
