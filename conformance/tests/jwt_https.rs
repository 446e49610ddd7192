//! HTTPS with bearer JWTs across implementations: the reference Python
//! client calling our worker, and our client calling the reference's
//! server, each through unary, producer and exchange calls, each side
//! validating ES256 tokens against a key set made by this test.
//!
//! Skipped (with a note) when the reference venv has not been built.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod in_process;
}

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use support::in_process::{conformance_server, serve_in_process};
use vgirpc_client::Client;
use vgirpc_client::http::{HttpOptions, HttpTransport};
use vgirpc_conformance::service::ConformanceServiceClient;
use vgirpc_http::{HttpConfig, HttpServer, JwksSource, JwtAuthenticator, JwtConfig, TlsConfig};
use vgirpc_test_support::pki::Pki;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "vgi-rpc-tests";
const KID: &str = "test-key-1";

/// An ES256 signing key and the JWKS that publishes it.
struct Signer {
    key: EncodingKey,
    jwks: String,
}

impl Signer {
    fn new() -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        // The uncompressed point: 0x04, then x and y.
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]});
        Self {
            key: EncodingKey::from_ec_der(pair.serialized_der()),
            jwks: jwks.to_string(),
        }
    }

    /// A token for `subject`, valid for ten minutes.
    fn token(&self, subject: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject,
            "iat": now, "exp": now + 600,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// Our server, HTTPS with `pki` and JWTs of `signer`, under `/vgi`.
fn start_ours(pki: &Pki, signer: &Signer) -> u16 {
    let tls = TlsConfig::from_pem(
        pki.server.cert_pem.as_bytes(),
        pki.server.key_pem.as_bytes(),
    )
    .unwrap();
    let jwt = JwtAuthenticator::new(
        JwtConfig::new([ISSUER], [AUDIENCE]).jwks(JwksSource::Json(signer.jwks.clone())),
    )
    .unwrap();
    let config = HttpConfig::new()
        .with_prefix("/vgi")
        .with_tls(tls)
        .with_authenticate(jwt);
    serve_in_process(HttpServer::new(conformance_server(), config).unwrap())
}

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("vgirpc-jwt-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_reference_client_calls_our_https_server_with_a_bearer_jwt() {
    let Some(bin) = vgirpc_conformance::reference::venv_bin() else {
        return;
    };
    let pki = Pki::generate();
    let signer = Signer::new();
    let port = start_ours(&pki, &signer);
    let ca = write_temp("ca.pem", &pki.ca_pem);
    let script = "\
import sys, httpx
from vgi_rpc import AnnotatedBatch
from vgi_rpc.conformance import ConformanceService
from vgi_rpc.http import http_connect
url, ca, token = sys.argv[1:4]
client = httpx.Client(base_url=url, verify=ca, headers={'Authorization': 'Bearer ' + token})
with http_connect(ConformanceService, prefix='/vgi', client=client) as svc:
    assert svc.echo_string(value='jwt') == 'jwt'
    batches = list(svc.produce_n(count=3))
    assert [b.batch.column('index')[0].as_py() for b in batches] == [0, 1, 2]
    with svc.exchange_scale(factor=2.0) as stream:
        out = stream.exchange(AnnotatedBatch.from_pydict({'value': [1.5, -2.0]}))
        assert out.batch.column('value').to_pylist() == [3.0, -4.0], out
anonymous = httpx.Client(base_url=url, verify=ca)
with http_connect(ConformanceService, prefix='/vgi', client=anonymous) as svc:
    try:
        svc.echo_string(value='nobody')
    except Exception as err:
        assert 'Authorization' in str(err) or '401' in str(err), err
    else:
        raise AssertionError('a call without a token was served')
print('reference client ok')
";
    let output = Command::new(bin.join("python"))
        .args([
            "-c",
            script,
            &format!("https://localhost:{port}"),
            ca.to_str().unwrap(),
            &signer.token("alice"),
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

/// The reference's server (its falcon app behind the standard library's
/// TLS), checking JWTs against the key set it serves itself.
struct ReferenceServer(Child);

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const REFERENCE_SERVER: &str = "\
import http.server, json, socketserver, ssl, sys, threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from vgi_rpc.conformance import ConformanceService, ConformanceServiceImpl
from vgi_rpc.http import jwt_authenticate, make_wsgi_app
from vgi_rpc.rpc import RpcServer
cert, key, jwks, issuer, audience = sys.argv[1:6]

class Keys(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = jwks.encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

keys = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Keys)
threading.Thread(target=keys.serve_forever, daemon=True).start()
authenticate = jwt_authenticate(issuer=issuer, audience=audience,
    jwks_uri=f'http://127.0.0.1:{keys.server_address[1]}/jwks')
app = make_wsgi_app(RpcServer(ConformanceService, ConformanceServiceImpl()),
    prefix='/vgi', authenticate=authenticate)

class Threading(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

httpd = make_server('127.0.0.1', 0, app, server_class=Threading, handler_class=Quiet)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
print(f'PORT:{httpd.server_address[1]}', flush=True)
httpd.serve_forever()
";

fn start_reference(bin: &std::path::Path, pki: &Pki, signer: &Signer) -> (ReferenceServer, u16) {
    let cert = write_temp("server.pem", &pki.server.cert_pem);
    let key = write_temp("server.key", &pki.server.key_pem);
    let mut child = Command::new(bin.join("python"))
        .args(["-c", REFERENCE_SERVER])
        .arg(&cert)
        .arg(&key)
        .args([signer.jwks.as_str(), ISSUER, AUDIENCE])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = ReferenceServer(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT:")
        .unwrap_or_else(|| panic!("the reference server printed {line:?}"))
        .parse()
        .unwrap();
    for path in [cert, key] {
        std::fs::remove_file(path).unwrap();
    }
    (server, port)
}

#[test]
fn our_client_calls_the_reference_https_server_with_a_bearer_jwt() {
    let Some(bin) = vgirpc_conformance::reference::venv_bin() else {
        return;
    };
    let pki = Pki::generate();
    let signer = Signer::new();
    let (_server, port) = start_reference(&bin, &pki, &signer);
    let url = format!("https://localhost:{port}");
    // The reference's WSGI server under Python's `ssl` ends a response
    // without Content-Length by closing the TLS connection without a
    // close_notify, which rustls rightly takes for a truncated body. Its
    // zstd answers carry a Content-Length, so ask for those even though
    // the server is on this host.
    let options = HttpOptions::new()
        .compress_loopback(true)
        .prefix("/vgi")
        .system_roots(false)
        .ca_certificate_pem(pki.ca_pem.as_bytes())
        .timeout(Duration::from_secs(30));
    let connect = |options: HttpOptions| -> ConformanceServiceClient<HttpTransport> {
        ConformanceServiceClient::new(Client::connect_http_with(&url, options).unwrap())
    };

    let mut service = connect(options.clone().bearer_token(signer.token("alice")));
    assert_eq!(service.echo_string("jwt".into()).unwrap(), "jwt");
    let mut produced = Vec::new();
    let mut stream = service.produce_n(3).unwrap();
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
    assert_eq!(produced, [0, 1, 2]);
    let mut stream = service.exchange_scale(2.0).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        false,
    )]));
    let input =
        RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(vec![1.5, -2.0]))]).unwrap();
    let output = stream.exchange(&input).unwrap();
    assert_eq!(
        output.column(0).as_primitive::<Float64Type>().values(),
        &[3.0, -4.0]
    );
    stream.close().unwrap();

    let mut anonymous = connect(options);
    let refused = anonymous.echo_string("nobody".into()).unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
}
