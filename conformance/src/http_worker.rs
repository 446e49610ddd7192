//! `--http`: the worker as an HTTP server, with the flags (and defaults) of
//! the reference's `tests/serve_conformance_http*.py` servers, so one binary
//! plays the plain, strict-cap, shared-key, storage and reject-all servers.
//!
//! Like the reference's servers it enables sticky sessions by default, with
//! a fixed echo header for the suite's echo test, and serves the test-only
//! drain switch `POST`/`DELETE /__test_drain__`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};
use vgirpc::Server;
use vgirpc_http::{
    AuthContext, AuthRejection, Authenticate, CertificateIdentity, Chain, ClientAuth, CorsConfig,
    DEFAULT_CORS_MAX_AGE, DrainHandle, ExternalConfig, HttpConfig, HttpServer, JwksSource,
    JwtAuthenticator, JwtConfig, OAuthPkce, OAuthResourceMetadata, ResponseBody, ShutdownSignals,
    StickyConfig, Stopped, TlsConfig, TlsReload, TokenKey, chain, mtls_header, mtls_native,
    mtls_xfcc, with_resource_metadata,
};

/// Usage lines of the HTTP flags.
pub(crate) const USAGE: &str = "\
  --http               serve HTTP; prints PORT:<port> when ready
  --host HOST          bind address (default 127.0.0.1)
  --port PORT          port (default 0: any free port)
  --token-key HEX      shared stream-token key (default $VGI_TOKEN_KEY, else random)
  --fake-storage URL   externalize into the reference's fake storage service
                       and vend upload URLs from it
  --externalize-threshold N  batch size that triggers externalization (default 4096)
  --compression none|zstd    compression of externalized batches (default none)
  --max-request-bytes N      advertised request cap (default: the threshold
                             with --fake-storage, else none)
  --max-response-bytes N     HTTP body cap
  --max-externalized-response-bytes N  external upload cap per response
  --auth reject-all    refuse every request except the health check
  --http-pkce          serve as the Go conformance worker's browser-login server
                       (implies --http): prefix /vgi, every request refused
                       without a token, OAuth metadata for client my-client-id
                       (secret my-client-secret), the login routes and the
                       token proxy under /vgi/_oauth/
  --idp-url URL        its authorization server (default http://127.0.0.1:9999)
  --resource URL       its resource URL (default http://127.0.0.1:8000/vgi)
  --jwks FILE|URL      accept bearer JWTs signed by these keys (needs --issuer
                       and --audience; a URL is refreshed)
  --issuer ISS         accepted JWT issuer (repeatable)
  --audience AUD       accepted JWT audience (repeatable)
  --principal-claim C  JWT claim naming the caller (default sub)
  --jwt-leeway SEC     clock skew allowed on exp and nbf (default 0)
  --mtls-header NAME   accept the URL-encoded PEM client certificate a proxy
                       puts in header NAME (the proxy must strip clients' copies)
  --mtls-native        accept the client certificate verified by --client-ca
  --xfcc               accept Envoy's x-forwarded-client-cert (the proxy must
                       strip clients' copies)
  --resource-metadata URL  publish RFC 9728 metadata for resource URL, the
                       --issuer values as its authorization servers
                       (authenticators are tried in the order listed here)
  --no-sticky          disable sticky sessions (enabled by default)
  --no-sticky-echo     do not advertise the sticky echo header
                       (default: x-vgi-conformance-echo: conformance-fixed-marker)
  --drain-grace-seconds SEC  on SIGTERM/SIGINT, serve open sticky sessions
                       this long before exiting (default 0)
  --drain-timeout SEC  then wait this long for the requests in flight (default 30)
  --max-decompressed-bytes N  cap on a zstd request body's decoded size
                       (default 16x --max-request-bytes, else 256 MiB)
  --max-connections N  connections served at once (default 1000)
  --header-read-timeout SEC|none  time for a request head (default 10)
  --body-read-timeout SEC|none    longest pause in a request body (default 30)
  --keep-alive-timeout SEC|none   idle time before a connection closes (default 75)
  --cors-origin ORIGIN let browser apps of ORIGIN call the server (repeatable;
                       `*` for any origin)
  --cors-max-age SEC   how long browsers cache a preflight (default 7200)
  --tls-cert FILE      serve HTTPS with this PEM certificate chain (leaf first);
                       reloaded with --tls-key on SIGHUP
  --tls-key FILE       the certificate's PEM private key
  --client-ca FILE     verify client certificates against these PEM CAs
  --require-client-cert  refuse clients without one (default: optional)
  --no-http2           HTTP/1.1 only (default: h2 by ALPN with TLS, h2c by
                       prior knowledge without, beside HTTP/1.1)
  --describe           accepted for compatibility; __describe__ is always served";

/// Upload size advertised with vended URLs, as the reference worker does.
const MAX_UPLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// The echo header the suite's `test_echo_header_round_trip` expects.
const ECHO_HEADER: (&str, &str) = ("x-vgi-conformance-echo", "conformance-fixed-marker");

/// Path of the test-only drain switch.
const TEST_DRAIN_PATH: &str = "/__test_drain__";

/// The HTTP flags, collected while the command line is parsed.
#[derive(Debug, Default)]
pub(crate) struct HttpFlags {
    enabled: bool,
    host: Option<String>,
    port: Option<u16>,
    token_key: Option<String>,
    fake_storage: Option<String>,
    externalize_threshold: Option<usize>,
    zstd_uploads: bool,
    max_request_bytes: Option<u64>,
    max_response_bytes: Option<u64>,
    max_externalized_response_bytes: Option<u64>,
    reject_all: bool,
    no_sticky: bool,
    no_sticky_echo: bool,
    drain_grace: Option<Duration>,
    drain_timeout: Option<Duration>,
    max_decompressed_bytes: Option<u64>,
    max_connections: Option<usize>,
    header_read_timeout: Option<Option<Duration>>,
    body_read_timeout: Option<Option<Duration>>,
    keep_alive_timeout: Option<Option<Duration>>,
    cors_origins: Vec<String>,
    cors_max_age: Option<Duration>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    client_ca: Option<String>,
    require_client_cert: bool,
    no_http2: bool,
    pkce: PkceFlags,
    auth: AuthFlags,
}

/// What `--http` serves.
#[derive(Debug)]
pub(crate) struct HttpOptions {
    host: String,
    port: u16,
    reject_all: bool,
    token_key: Option<TokenKey>,
    config: HttpConfig,
    drain_grace: Duration,
}

fn number<T: std::str::FromStr>(flag: &str, raw: &str) -> Result<T, String> {
    raw.parse()
        .map_err(|_| format!("{flag} takes a whole number, got {raw:?}"))
}

fn seconds(flag: &str, raw: &str) -> Result<Duration, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} takes a non-negative number of seconds, got {raw:?}"))
}

/// Seconds, or `none` for no timeout.
fn timeout(flag: &str, raw: &str) -> Result<Option<Duration>, String> {
    if raw == "none" {
        return Ok(None);
    }
    seconds(flag, raw).map(Some)
}

impl HttpFlags {
    /// Consumes `flag` if it is an HTTP flag; `value` yields its argument.
    pub(crate) fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        if self.auth.take(flag, value)? {
            return Ok(true);
        }
        match flag {
            "--http" => self.enabled = true,
            "--http-pkce" => {
                self.enabled = true;
                self.pkce.enabled = true;
            }
            "--idp-url" => self.pkce.idp_url = Some(value()?),
            "--resource" => self.pkce.resource = Some(value()?),
            "--host" => self.host = Some(value()?),
            "--port" => self.port = Some(number(flag, &value()?)?),
            "--token-key" => self.token_key = Some(value()?),
            "--fake-storage" => self.fake_storage = Some(value()?),
            "--externalize-threshold" => {
                self.externalize_threshold = Some(number(flag, &value()?)?);
            }
            "--compression" => {
                self.zstd_uploads = match value()?.as_str() {
                    "zstd" => true,
                    "none" => false,
                    other => {
                        return Err(format!("--compression takes none or zstd, got {other:?}"));
                    }
                };
            }
            "--max-request-bytes" => self.max_request_bytes = Some(number(flag, &value()?)?),
            "--max-response-bytes" => self.max_response_bytes = Some(number(flag, &value()?)?),
            "--max-externalized-response-bytes" => {
                self.max_externalized_response_bytes = Some(number(flag, &value()?)?);
            }
            "--auth" => match value()?.as_str() {
                "reject-all" => self.reject_all = true,
                other => return Err(format!("--auth takes reject-all, got {other:?}")),
            },
            "--no-sticky" => self.no_sticky = true,
            "--no-sticky-echo" => self.no_sticky_echo = true,
            "--drain-grace-seconds" => self.drain_grace = Some(seconds(flag, &value()?)?),
            "--drain-timeout" => self.drain_timeout = Some(seconds(flag, &value()?)?),
            "--max-decompressed-bytes" => {
                self.max_decompressed_bytes = Some(number(flag, &value()?)?);
            }
            "--max-connections" => {
                let connections = number(flag, &value()?)?;
                if connections == 0 {
                    return Err(format!("{flag} takes at least 1"));
                }
                self.max_connections = Some(connections);
            }
            "--header-read-timeout" => {
                self.header_read_timeout = Some(timeout(flag, &value()?)?);
            }
            "--body-read-timeout" => self.body_read_timeout = Some(timeout(flag, &value()?)?),
            "--keep-alive-timeout" => self.keep_alive_timeout = Some(timeout(flag, &value()?)?),
            // The reference needs it to serve __describe__; we always do.
            "--cors-origin" => self.cors_origins.push(value()?),
            "--cors-max-age" => self.cors_max_age = Some(seconds(flag, &value()?)?),
            "--tls-cert" => self.tls_cert = Some(value()?),
            "--tls-key" => self.tls_key = Some(value()?),
            "--client-ca" => self.client_ca = Some(value()?),
            "--require-client-cert" => self.require_client_cert = true,
            "--no-http2" => self.no_http2 = true,
            "--describe" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The HTTP options if `--http` was given; an error for HTTP flags
    /// without it.
    pub(crate) fn finish(self) -> Result<Option<HttpOptions>, String> {
        let pkce = self.pkce.check()?;
        if !self.enabled {
            let any = self.host.is_some()
                || self.port.is_some()
                || self.token_key.is_some()
                || self.fake_storage.is_some()
                || self.externalize_threshold.is_some()
                || self.zstd_uploads
                || self.max_request_bytes.is_some()
                || self.max_response_bytes.is_some()
                || self.max_externalized_response_bytes.is_some()
                || self.reject_all
                || self.no_sticky
                || self.no_sticky_echo
                || self.drain_grace.is_some()
                || self.drain_timeout.is_some()
                || self.max_decompressed_bytes.is_some()
                || self.max_connections.is_some()
                || self.header_read_timeout.is_some()
                || self.body_read_timeout.is_some()
                || self.keep_alive_timeout.is_some()
                || !self.cors_origins.is_empty()
                || self.cors_max_age.is_some()
                || self.tls_cert.is_some()
                || self.tls_key.is_some()
                || self.client_ca.is_some()
                || self.require_client_cert
                || self.no_http2
                || self.auth.any();
            return if any {
                Err("HTTP flags need --http".into())
            } else {
                Ok(None)
            };
        }
        let token_key = self
            .token_key
            .map(|hex| TokenKey::from_hex(&hex).map_err(|e| format!("--token-key: {e}")))
            .transpose()?;
        let threshold = self.externalize_threshold.unwrap_or(4096);
        let mut config = HttpConfig::new();
        if let Some(url) = self.fake_storage {
            let storage = Arc::new(vgirpc_http::testing::FakeStorageClient::new(url));
            let mut external = ExternalConfig::new(storage.clone())
                .with_threshold(threshold)
                // The fake storage serves plain http on loopback.
                .allow_any_url();
            if self.zstd_uploads {
                external = external.with_compression(3);
            }
            config = config
                .with_external(external)
                .with_upload_urls(storage, Some(MAX_UPLOAD_BYTES))
                .with_max_request_bytes(self.max_request_bytes.unwrap_or(threshold as u64));
        } else if let Some(bytes) = self.max_request_bytes {
            config = config.with_max_request_bytes(bytes);
        }
        if let Some(bytes) = self.max_response_bytes {
            config = config.with_max_response_bytes(bytes);
        }
        if let Some(bytes) = self.max_externalized_response_bytes {
            config = config.with_max_externalized_response_bytes(bytes);
        }
        if let Some(bytes) = self.max_decompressed_bytes {
            config = config.with_max_decompressed_bytes(bytes);
        }
        if let Some(connections) = self.max_connections {
            config = config.with_max_connections(connections);
        }
        if let Some(timeout) = self.header_read_timeout {
            config = config.with_header_read_timeout(timeout);
        }
        if let Some(timeout) = self.body_read_timeout {
            config = config.with_body_read_timeout(timeout);
        }
        if let Some(timeout) = self.keep_alive_timeout {
            config = config.with_keep_alive_timeout(timeout);
        }
        if let Some(timeout) = self.drain_timeout {
            config = config.with_drain_timeout(timeout);
        }
        if !self.cors_origins.is_empty() {
            let cors = if self.cors_origins.iter().any(|o| o == "*") {
                CorsConfig::any_origin()
            } else {
                CorsConfig::origins(self.cors_origins)
            };
            config = config
                .with_cors(cors.max_age(Some(self.cors_max_age.unwrap_or(DEFAULT_CORS_MAX_AGE))));
        } else if self.cors_max_age.is_some() {
            return Err("--cors-max-age needs --cors-origin".into());
        }
        config = config.with_http2(!self.no_http2);
        match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                let mut tls = TlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())?;
                if let Some(ca) = self.client_ca {
                    let auth = if self.require_client_cert {
                        ClientAuth::Required
                    } else {
                        ClientAuth::Optional
                    };
                    tls = tls
                        .with_client_ca_file(ca, auth)
                        .map_err(|e| e.to_string())?;
                } else if self.require_client_cert {
                    return Err("--require-client-cert needs --client-ca".into());
                }
                config = config.with_tls(tls);
            }
            (None, None) if self.client_ca.is_none() && !self.require_client_cert => {}
            _ => return Err("TLS needs both --tls-cert and --tls-key".into()),
        }
        if let Some(authenticated) = self.auth.apply(config.clone())? {
            if self.reject_all {
                return Err("--auth reject-all takes no other authentication flag".into());
            }
            config = authenticated;
        }
        if pkce.enabled && self.reject_all {
            return Err("--http-pkce sets its own authentication; drop --auth".into());
        }
        config = pkce.apply(config)?;
        if !self.no_sticky {
            let mut sticky = StickyConfig::new();
            if !self.no_sticky_echo {
                sticky = sticky.with_echo_header(ECHO_HEADER.0, ECHO_HEADER.1);
            }
            config = config.with_sticky(sticky);
        }
        Ok(Some(HttpOptions {
            host: self.host.unwrap_or_else(|| "127.0.0.1".into()),
            port: self.port.unwrap_or(0),
            reject_all: self.reject_all,
            token_key,
            config,
            // The fixtures stop the worker with SIGTERM and wait only
            // briefly, so by default draining ends at once.
            drain_grace: self.drain_grace.unwrap_or(Duration::ZERO),
        }))
    }
}

/// Threads for calls that do not run in place; each HTTP/1.1 connection
/// or HTTP/2 stream has at most one call running, so beyond this many
/// calls at once the others wait.
const MAX_BLOCKING_THREADS: usize = 64;

/// Serves `server` over HTTP until SIGTERM or SIGINT, draining sticky
/// sessions for the grace period first.
pub(crate) fn run(server: &Server, options: &HttpOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Calls beyond the in-place ones block a runtime thread, and each
        // such thread keeps its allocator's caches: the bound keeps memory
        // under load bounded too.
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vgi-conformance-worker: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let HttpOptions {
        host,
        port,
        reject_all,
        token_key,
        config,
        drain_grace,
    } = options;
    let port = *port;
    let mut config = config.clone();
    if let Some(key) = token_key {
        config = config.with_token_key(key.clone());
    }
    if *reject_all {
        config = config.with_authenticate(vgirpc_http::reject_all());
    }
    let result = runtime.block_on(async {
        let http = HttpServer::new(server.clone(), config).map_err(|e| e.to_string())?;
        let drain = http.drain_handle();
        if let Some(reload) = http.tls_reload() {
            tokio::spawn(reload_on_sighup(reload));
        }
        let http = http.layer(TestDrainLayer(drain));
        // Before the ready line: a signal right after it must drain, not kill.
        let signals = ShutdownSignals::install().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            // The harness reads exactly this one line; nothing else goes to stdout.
            writeln!(stdout, "PORT:{port}")
                .and_then(|()| stdout.flush())
                .map_err(|e| e.to_string())?;
        }
        http.serve_until_signalled(listener, signals, *drain_grace)
            .await
            .map_err(|e| e.to_string())
    });
    // Requests still running get a moment; the process is leaving anyway.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(Stopped::Graceful) => ExitCode::SUCCESS,
        // A second signal cut the grace period short, as the reference's
        // exit status 1 reports.
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("vgi-conformance-worker: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the TLS certificate and key again on every `SIGHUP`, as a
/// certificate renewal expects; a failed reload keeps the old ones.
async fn reload_on_sighup(reload: TlsReload) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; the TLS certificate will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match reload.reload() {
            Ok(()) => tracing::info!("reloaded the TLS certificate"),
            Err(err) => tracing::error!(%err, "TLS certificate reload failed; keeping the old one"),
        }
    }
}

/// `POST /__test_drain__` starts draining, `DELETE` stops it (both 204), so
/// the suite's drain test can run without signalling the worker and leave
/// it usable; the reference's conformance server has the same switch. A
/// server without sticky sessions accepts both and does nothing.
#[derive(Debug, Clone)]
struct TestDrainLayer(Option<DrainHandle>);

impl<S> Layer<S> for TestDrainLayer {
    type Service = TestDrain<S>;

    fn layer(&self, inner: S) -> TestDrain<S> {
        TestDrain {
            inner,
            drain: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct TestDrain<S> {
    inner: S,
    drain: Option<DrainHandle>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<S, B> Service<Request<B>> for TestDrain<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Answer {
        if request.uri().path() != TEST_DRAIN_PATH {
            return Box::pin(self.inner.call(request));
        }
        let status = match (request.method(), &self.drain) {
            (&Method::POST, Some(drain)) => {
                drain.drain();
                StatusCode::NO_CONTENT
            }
            (&Method::DELETE, Some(drain)) => {
                drain.cancel_drain();
                StatusCode::NO_CONTENT
            }
            (&Method::POST | &Method::DELETE, None) => StatusCode::NO_CONTENT,
            _ => StatusCode::METHOD_NOT_ALLOWED,
        };
        let mut response = Response::new(ResponseBody::full(Vec::new()));
        *response.status_mut() = status;
        Box::pin(std::future::ready(Ok(response)))
    }
}

/// The authentication flags, collected while the command line is parsed.
#[derive(Debug, Default)]
struct AuthFlags {
    jwks: Option<String>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    principal_claim: Option<String>,
    jwt_leeway: Option<Duration>,
    mtls_header: Option<String>,
    mtls_native: bool,
    xfcc: bool,
    resource_metadata: Option<String>,
}

impl AuthFlags {
    fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--jwks" => self.jwks = Some(value()?),
            "--issuer" => self.issuers.push(value()?),
            "--audience" => self.audiences.push(value()?),
            "--principal-claim" => self.principal_claim = Some(value()?),
            "--jwt-leeway" => self.jwt_leeway = Some(seconds(flag, &value()?)?),
            "--mtls-header" => self.mtls_header = Some(value()?),
            "--mtls-native" => self.mtls_native = true,
            "--xfcc" => self.xfcc = true,
            "--resource-metadata" => self.resource_metadata = Some(value()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn any(&self) -> bool {
        self.jwks.is_some()
            || !self.issuers.is_empty()
            || !self.audiences.is_empty()
            || self.principal_claim.is_some()
            || self.jwt_leeway.is_some()
            || self.mtls_header.is_some()
            || self.mtls_native
            || self.xfcc
            || self.resource_metadata.is_some()
    }

    /// `config` with the authenticators asked for, chained in a fixed
    /// order; `None` when none is. Fetches a JWKS given by URL.
    fn apply(self, config: HttpConfig) -> Result<Option<HttpConfig>, String> {
        fn add(auth: Option<Chain>, next: impl Authenticate) -> Option<Chain> {
            Some(match auth {
                Some(auth) => auth.or(next),
                None => chain(next),
            })
        }
        let mut auth = None;
        match self.jwks {
            Some(jwks) => {
                let mut jwt = JwtConfig::new(self.issuers.clone(), self.audiences)
                    .jwks(JwksSource::parse(&jwks));
                if let Some(claim) = self.principal_claim {
                    jwt = jwt.principal_claim(claim);
                }
                if let Some(leeway) = self.jwt_leeway {
                    jwt = jwt.leeway(leeway);
                }
                let jwt = JwtAuthenticator::new(jwt).map_err(|e| format!("--jwks: {e}"))?;
                auth = add(auth, jwt);
            }
            None if !self.issuers.is_empty() && self.resource_metadata.is_none()
                || !self.audiences.is_empty()
                || self.principal_claim.is_some()
                || self.jwt_leeway.is_some() =>
            {
                return Err("the JWT flags need --jwks".into());
            }
            None => {}
        }
        if let Some(header) = self.mtls_header {
            auth = add(auth, mtls_header(header, CertificateIdentity::subject()));
        }
        if self.xfcc {
            auth = add(auth, mtls_xfcc());
        }
        if self.mtls_native {
            auth = add(auth, mtls_native(CertificateIdentity::subject()));
        }
        let Some(auth) = auth else {
            return match self.resource_metadata {
                Some(_) => Err("--resource-metadata needs an authentication flag".into()),
                None => Ok(None),
            };
        };
        Ok(Some(match self.resource_metadata {
            Some(resource) => {
                let metadata = OAuthResourceMetadata::new(resource, self.issuers);
                let auth = with_resource_metadata(auth, metadata)
                    .map_err(|e| format!("--resource-metadata: {e}"))?;
                config.with_authenticate(auth)
            }
            None => config.with_authenticate(auth),
        }))
    }
}

/// The client the Go worker's `--http-pkce` server is registered as.
const PKCE_CLIENT: (&str, &str) = ("my-client-id", "my-client-secret");

/// `--http-pkce` and its options: the Go conformance worker's server for
/// the reference's `test_oauth_token_proxy_conformance.py`, which starts it
/// with `--http-pkce --port P --idp-url URL --resource URL`.
#[derive(Debug, Default)]
struct PkceFlags {
    enabled: bool,
    idp_url: Option<String>,
    resource: Option<String>,
}

impl PkceFlags {
    /// The flags, unless an option came without `--http-pkce`.
    fn check(self) -> Result<Self, String> {
        if !self.enabled && (self.idp_url.is_some() || self.resource.is_some()) {
            return Err("--idp-url and --resource need --http-pkce".into());
        }
        Ok(self)
    }

    /// `config` serving the browser login flow, when asked for.
    fn apply(self, config: HttpConfig) -> Result<HttpConfig, String> {
        if !self.enabled {
            return Ok(config);
        }
        let resource = self
            .resource
            .unwrap_or_else(|| "http://127.0.0.1:8000/vgi".into());
        let idp = self
            .idp_url
            .unwrap_or_else(|| "http://127.0.0.1:9999".into());
        let metadata = OAuthResourceMetadata {
            client_id: Some(PKCE_CLIENT.0.into()),
            client_secret: Some(PKCE_CLIENT.1.into()),
            ..OAuthResourceMetadata::new(resource, [idp])
        };
        // As the Go worker: no credential is ever accepted, so every
        // request but the health check and the flow's own routes is
        // refused, the way the test's reference server refuses them.
        let refuse = |_: &http::request::Parts| -> Result<AuthContext, _> {
            Err(AuthRejection::new("auth required"))
        };
        let auth =
            with_resource_metadata(refuse, metadata).map_err(|e| format!("--http-pkce: {e}"))?;
        Ok(config
            .with_prefix("/vgi")
            .with_authenticate(auth)
            .with_oauth_pkce(OAuthPkce::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<HttpOptions>, String> {
        let mut flags = HttpFlags::default();
        let mut args: std::collections::VecDeque<String> =
            args.iter().map(|a| (*a).to_owned()).collect();
        while let Some(flag) = args.pop_front() {
            let mut value = || {
                args.pop_front()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            assert!(flags.take(&flag, &mut value)?, "{flag} is an HTTP flag");
        }
        flags.finish()
    }

    #[test]
    fn authentication_flags_chain_their_authenticators() {
        let options = parse(&[
            "--http",
            "--xfcc",
            "--mtls-header",
            "X-SSL-Client-Cert",
            "--resource-metadata",
            "https://api.example/vgi",
            "--issuer",
            "https://idp.example",
        ])
        .unwrap()
        .unwrap();
        assert!(format!("{:?}", options.config).contains("authenticate: true"));
        for (args, error) in [
            (&["--http", "--audience", "vgi"][..], "need --jwks"),
            (
                &["--http", "--resource-metadata", "https://a"],
                "needs an authentication",
            ),
            (
                &["--http", "--xfcc", "--resource-metadata", "https://a"],
                "authorization_servers",
            ),
            (&["--http", "--auth", "reject-all", "--xfcc"], "reject-all"),
            (&["--xfcc"], "need --http"),
            (
                &[
                    "--http",
                    "--jwks",
                    "/no/such/jwks.json",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                ],
                "--jwks: ",
            ),
        ] {
            let message = parse(args).unwrap_err();
            assert!(message.contains(error), "{args:?}: {message}");
        }
    }

    #[test]
    fn http_pkce_is_the_go_workers_login_server() {
        let options = parse(&[
            "--http-pkce",
            "--port",
            "8123",
            "--idp-url",
            "http://127.0.0.1:9",
            "--resource",
            "http://127.0.0.1:8123/vgi",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(options.port, 8123);
        let config = format!("{:?}", options.config);
        for expected in [
            r#"prefix: "/vgi""#,
            "authenticate: true",
            "oauth_pkce: Some(OAuthPkce",
        ] {
            assert!(config.contains(expected), "{expected} in {config}");
        }
        assert!(
            parse(&["--http", "--idp-url", "http://a"])
                .unwrap_err()
                .contains("--http-pkce")
        );
        assert!(
            parse(&["--http-pkce", "--auth", "reject-all"])
                .unwrap_err()
                .contains("--auth")
        );
    }

    #[test]
    fn defaults_mirror_the_reference_servers() {
        let plain = parse(&["--http"]).unwrap().unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 0));
        let config = format!("{:?}", plain.config);
        assert!(config.contains("max_request_bytes: None"));
        // Sticky with the suite's echo header, like the reference server.
        assert!(
            config.contains(
                r#"echo_headers: [("x-vgi-conformance-echo", "conformance-fixed-marker")]"#
            ),
            "{config}"
        );
        assert_eq!(plain.drain_grace, Duration::ZERO);

        let no_echo = parse(&["--http", "--no-sticky-echo"]).unwrap().unwrap();
        let config = format!("{:?}", no_echo.config);
        assert!(config.contains("echo_headers: []"), "{config}");
        let off = parse(&["--http", "--no-sticky"]).unwrap().unwrap();
        assert!(format!("{:?}", off.config).contains("sticky: None"));

        // With storage, requests are capped at the externalization threshold.
        let storage = parse(&["--http", "--fake-storage", "http://127.0.0.1:9"])
            .unwrap()
            .unwrap();
        let config = format!("{:?}", storage.config);
        assert!(config.contains("threshold_bytes: 4096"), "{config}");
        assert!(config.contains("max_request_bytes: Some(4096)"), "{config}");
        assert!(
            config.contains("max_upload_bytes: Some(67108864)"),
            "{config}"
        );
    }

    #[test]
    fn every_flag_is_read() {
        let options = parse(&[
            "--http",
            "--host",
            "0.0.0.0",
            "--port",
            "8080",
            "--token-key",
            "00ff",
            "--fake-storage",
            "http://127.0.0.1:9",
            "--externalize-threshold",
            "1",
            "--compression",
            "zstd",
            "--max-request-bytes",
            "1048576",
            "--max-response-bytes",
            "65536",
            "--max-externalized-response-bytes",
            "65536",
            "--auth",
            "reject-all",
            "--drain-grace-seconds",
            "2.5",
            "--drain-timeout",
            "4",
            "--max-decompressed-bytes",
            "1000",
            "--max-connections",
            "7",
            "--header-read-timeout",
            "1.5",
            "--body-read-timeout",
            "none",
            "--keep-alive-timeout",
            "9",
            "--cors-origin",
            "https://a.example",
            "--cors-origin",
            "https://b.example",
            "--cors-max-age",
            "60",
            "--describe",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((options.host.as_str(), options.port), ("0.0.0.0", 8080));
        assert!(options.reject_all && options.token_key.is_some());
        assert_eq!(options.drain_grace, Duration::from_millis(2500));
        let config = format!("{:?}", options.config);
        for expected in [
            "threshold_bytes: 1",
            "compression_level: Some(3)",
            "max_request_bytes: Some(1048576)",
            "max_response_bytes: Some(65536)",
            "max_externalized_response_bytes: Some(65536)",
            "max_decompressed_bytes: Some(1000)",
            "header_read_timeout: Some(1.5s)",
            "body_read_timeout: None",
            "keep_alive_timeout: Some(9s)",
            "max_connections: 7",
            "drain_timeout: 4s",
            "List([\"https://a.example\", \"https://b.example\"])",
            "max_age: Some(60s)",
        ] {
            assert!(config.contains(expected), "{expected} in {config}");
        }
    }

    #[test]
    fn bad_values_and_orphan_flags_are_refused() {
        assert!(parse(&["--port", "1"]).unwrap_err().contains("--http"));
        assert!(parse(&["--http", "--compression", "gzip"]).is_err());
        assert!(parse(&["--http", "--auth", "allow-all"]).is_err());
        assert!(parse(&["--http", "--token-key", "xyz"]).is_err());
        assert!(parse(&["--http", "--port", "http"]).is_err());
        assert!(parse(&["--http", "--drain-grace-seconds", "-1"]).is_err());
        assert!(parse(&["--http", "--max-connections", "0"]).is_err());
        assert!(parse(&["--http", "--keep-alive-timeout", "never"]).is_err());
        assert!(
            parse(&["--max-connections", "5"])
                .unwrap_err()
                .contains("--http")
        );
        assert!(parse(&["--no-sticky"]).unwrap_err().contains("--http"));
        assert!(
            parse(&["--http", "--cors-max-age", "5"])
                .unwrap_err()
                .contains("--cors-origin")
        );
        assert!(parse(&[]).unwrap().is_none());
    }
}
