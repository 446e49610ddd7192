//! vgi-rpc over HTTP: stateless request/response pairs on hyper and tower.
//!
//! Each call is one `POST` whose body is an Arrow IPC request stream and
//! whose response is the Arrow IPC answer (WIRE_PROTOCOL §10). Streams have
//! no connection to live on, so between turns their state travels with the
//! client in a sealed token (`vgirpc-token`): any worker holding the same
//! key continues any stream, which lets requests of one stream land on
//! different workers. State types opt in with `#[vgirpc::stream_state]`.
//!
//! Endpoints, under a configurable prefix (empty by default):
//!
//! | Endpoint | |
//! |---|---|
//! | `POST {prefix}/{method}` | unary call, `__describe__` |
//! | `POST {prefix}/{method}/init` | open a stream; producers answer inline until `max_response_bytes` |
//! | `POST {prefix}/{method}/exchange` | one exchange, a producer continuation, or a cancel |
//! | `POST {prefix}/__upload_url__/init` | pre-signed upload URLs (with an [`UploadUrlProvider`]) |
//! | `OPTIONS {prefix}/__capabilities__`, `OPTIONS {prefix}/health` | capability headers |
//! | `GET {prefix}/health` | liveness, never behind authentication |
//! | `GET {prefix}`, `GET {prefix}/describe` | landing and API pages for browsers ([`Pages`]) |
//! | `DELETE {prefix}/__session__` | end a sticky session (sticky servers only) |
//! | `GET {prefix}/_oauth/callback`, `GET {prefix}/_oauth/logout` | browser logins ([`OAuthPkce`]) |
//! | `POST`/`OPTIONS {prefix}/_oauth/token` | token endpoint proxy for browser apps ([`OAuthPkce`]) |
//! | `GET /.well-known/oauth-protected-resource{prefix}` | RFC 9728 metadata ([`with_resource_metadata`]) |
//!
//! The server is a stack of tower layers around the endpoints (request id,
//! capability headers, authentication, body limits, zstd, sticky sessions);
//! see [`HttpServer::service`] to embed it in another hyper or tower server.
//! Methods run on tokio's blocking threads, so slow methods never hold up
//! the reactor and requests run in parallel on every core. This crate is the
//! server side only.
//!
//! [`HttpServer::serve`] holds every peer to timeouts (request head, body,
//! keep-alive) and a connection limit, all set on [`HttpConfig`] with safe
//! defaults, and on shutdown answers the requests already received before
//! it returns. It speaks HTTP/1.1 and HTTP/2 (h2c by prior knowledge on the
//! same port), and HTTPS with [`HttpConfig::with_tls`] (HTTP/2 by ALPN,
//! client certificates verified against a CA when asked).
//!
//! With [`HttpConfig::with_sticky`] methods may also keep live objects for
//! a client between calls ([sticky sessions](StickyConfig)), held in the
//! worker that opened them; [`HttpServer::serve_until_signalled`] then
//! drains gracefully on SIGTERM. On Fly.io, the `fly` feature's helpers
//! route a session's requests to the Machine that holds it.
//!
//! ```no_run
//! use vgirpc::{RpcError, Server};
//! use vgirpc_http::{HttpConfig, HttpServer};
//!
//! #[vgirpc::service]
//! pub trait Greeter {
//!     fn greet(&self, name: String) -> Result<String, RpcError>;
//! }
//!
//! struct Hello;
//!
//! impl Greeter for Hello {
//!     fn greet(&self, name: String) -> Result<String, RpcError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::new(GreeterServer::new(Hello))?;
//! let http = HttpServer::new(server, HttpConfig::new().with_max_response_bytes(1 << 20))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! http.serve(listener, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod auth;
mod blocking;
mod body;
mod buffer;
mod config;
mod connection;
mod cors;
mod decompress;
mod endpoints;
mod error;
mod external;
mod layer;
#[cfg(feature = "prometheus")]
mod metrics;
mod oauth;
mod outgoing;
mod pages;
mod reply;
mod rpc;
mod serve;
mod shutdown;
mod sticky;
mod storage;
mod tls;

// Opt-in: they serve one hosting platform.
#[cfg(feature = "fly")]
pub mod fly;

/// Test doubles, for test suites only: nothing here is meant for a
/// deployment.
pub mod testing {
    pub use crate::storage::FakeStorageClient;
}

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use vgirpc::{Server, TransportKind};

pub use auth::{
    AuthContext, AuthRejection, Authenticate, CertificateIdentity, Chain, ClientCertificate,
    ClientCertificateAuth, DEFAULT_JWT_LEEWAY, FingerprintAlgorithm, JwksSource, JwtAuthenticator,
    JwtConfig, OAuthResourceMetadata, PeerCertificate, WithResourceMetadata, XfccAuth, XfccElement,
    XfccSelect, bearer, bearer_static, chain, mtls_header, mtls_native, mtls_xfcc, parse_xfcc,
    reject_all, with_resource_metadata,
};
pub use body::{ARROW_STREAM, BodyError, BoxError, RequestBody, ResponseBody};
pub use config::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_DRAIN_GRACE, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_DECOMPRESSED_BYTES,
    HttpConfig,
};
pub use cors::{CorsConfig, DEFAULT_CORS_MAX_AGE};
pub use error::HttpError;
pub use external::{ExternalConfig, UrlPolicy};
#[cfg(feature = "prometheus")]
pub use metrics::{DEFAULT_METRICS_PATH, MetricsConfig};
pub use oauth::{
    AUTH_COOKIE, CookieAuthenticate, DEFAULT_RETURN_ORIGINS, OAuthPkce, SESSION_COOKIE,
    cookie_authenticate,
};
pub use pages::Pages;
pub use shutdown::{ShutdownSignals, Stopped};
pub use sticky::{DrainHandle, StickyConfig};
pub use storage::{ExternalStorage, UploadUrl, UploadUrlProvider, fetch_url};
pub use tls::{ClientAuth, TlsConfig, TlsReload};
pub use vgirpc_fetch::{FetchConfig, FetchError};
pub use vgirpc_token::{Identity, TokenKey};

use config::ConnectionLimits;
use endpoints::Endpoints;
use layer::auth::AuthLayer;
use layer::capabilities::CapabilitiesLayer;
use layer::compression::{CompressionLayer, ZSTD};
use layer::limit::BodyLimitLayer;
use layer::oauth::OAuthLayer;
use layer::request_id::RequestIdLayer;
use layer::resource_metadata::ResourceMetadataLayer;
use layer::sticky::StickyLayer;

/// The composed HTTP service, every layer around the vgi-rpc endpoints,
/// for requests whose body is `B`.
pub type HttpService<B = RequestBody> =
    BoxCloneSyncService<Request<B>, Response<ResponseBody>, Infallible>;

/// The peer address of a request's connection, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// A vgi-rpc [`Server`] ready to serve HTTP.
#[derive(Clone)]
pub struct HttpServer {
    service: HttpService,
    drain: Option<DrainHandle>,
    limits: ConnectionLimits,
    tls: Option<(tokio_rustls::TlsAcceptor, TlsReload)>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("sticky", &self.drain.is_some())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Builds the service stack for `server` as `config` says.
    pub fn new(server: Server, config: HttpConfig) -> Result<Self, HttpError> {
        if config.max_upload_bytes.is_some() && config.upload_urls.is_none() {
            return Err(HttpError::Config(
                "max_upload_bytes needs an upload URL provider".into(),
            ));
        }
        let key = match config.token_key.clone().or_else(TokenKey::from_env) {
            Some(key) => key,
            None => {
                tracing::warn!(
                    "no token key configured and {} is not set; using a random per-process key, \
                     so stream state tokens will not open in any other worker",
                    vgirpc_token::TOKEN_KEY_ENV
                );
                TokenKey::random()
            }
        };
        serve::check_limits(&config.connections)?;
        let (config, oauth) = oauth::install(config)?;
        #[cfg(feature = "prometheus")]
        if let Some(metrics) = &config.metrics {
            metrics.check(&config.prefix, &server)?;
        }
        let tls = match &config.tls {
            Some(tls) => Some(tls.acceptor(config.connections.http2)?),
            None => None,
        };
        server
            .notify_serve_start(TransportKind::Http)
            .map_err(HttpError::Start)?;
        let prefix = config.prefix.clone();
        let capabilities = capability_headers(&config)?;
        let max_decompressed = config.max_decompressed_bytes.unwrap_or_else(|| {
            config
                .max_request_bytes
                .map_or(DEFAULT_MAX_DECOMPRESSED_BYTES, |cap| cap.saturating_mul(16))
        });
        let sticky = match &config.sticky {
            Some(sticky) => Some(Arc::new(sticky::Sticky::new(sticky, key.clone())?)),
            None => None,
        };
        #[cfg(feature = "prometheus")]
        let counted = config.metrics.as_ref().map(|metrics| {
            let counted = Arc::new(metrics::Metrics::new(
                &metrics.path,
                sticky.as_ref().map(|sticky| sticky.sessions()),
            ));
            server.add_hook(metrics::CallCounter(counted.clone()));
            counted
        });
        let endpoints = Endpoints::new(
            rpc::Rpc {
                server: server.clone(),
                key,
                token_ttl_secs: config.token_ttl_secs,
                max_response_bytes: config.max_response_bytes,
                max_externalized_response_bytes: config.max_externalized_response_bytes,
                external: config.external,
                upload_urls: config.upload_urls,
                #[cfg(feature = "prometheus")]
                metrics: counted,
            },
            &prefix,
            &config.pages,
        );
        let health = format!("{prefix}/health");
        let unauthenticated = vec![health.clone()];
        // Scrapers rarely hold the callers' credentials; the scrape skips
        // authentication, as the health check does, unless asked not to.
        #[cfg(feature = "prometheus")]
        let unauthenticated = match config.metrics.as_ref().filter(|m| !m.authenticated) {
            Some(metrics) => vec![health.clone(), metrics.path.clone()],
            None => unauthenticated,
        };
        let resource_metadata = config
            .authenticate
            .as_ref()
            .and_then(|auth| auth.resource_metadata())
            .map(|metadata| ResourceMetadataLayer::new(metadata, &prefix));
        let cors = match &config.cors {
            Some(cors) => Some(cors.layer(exposed_headers(&capabilities, config.sticky.as_ref()))?),
            None => None,
        };
        let service = ServiceBuilder::new()
            // Outermost: a preflight is answered before anything else looks
            // at it, and every answer, errors included, carries the headers.
            .option_layer(cors)
            .layer(RequestIdLayer)
            .layer(CapabilitiesLayer::new(capabilities))
            .option_layer(oauth.map(OAuthLayer::new))
            .option_layer(resource_metadata)
            .layer(AuthLayer::new(
                config.authenticate,
                unauthenticated,
                server.clone(),
            ))
            .layer(BodyLimitLayer::new(
                config.max_request_bytes,
                vec![format!("{prefix}/__upload_url__"), health],
                config.connections.body_read_timeout,
            ))
            .layer(CompressionLayer::new(
                config.compression_level,
                usize::try_from(max_decompressed).unwrap_or(usize::MAX),
            ))
            // Absent rather than idle when disabled: the non-sticky wire
            // stays exactly what it was.
            .option_layer(sticky.clone().map(|s| StickyLayer::new(s, &prefix)))
            .service(endpoints);
        Ok(Self {
            service: BoxCloneSyncService::new(service),
            drain: sticky.map(|s| s.drain_handle()),
            limits: config.connections,
            tls,
        })
    }

    /// The graceful-drain handle of a sticky server; `None` without
    /// sticky sessions, which have nothing to drain.
    pub fn drain_handle(&self) -> Option<DrainHandle> {
        self.drain.clone()
    }

    /// The handle that reloads the TLS certificate of a server built with
    /// [`HttpConfig::with_tls`]; `None` in plain text.
    pub fn tls_reload(&self) -> Option<TlsReload> {
        self.tls.as_ref().map(|(_, reload)| reload.clone())
    }

    /// Wraps the whole stack in `layer`, outermost: routes or middleware of
    /// one's own in front of the vgi-rpc endpoints.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<HttpService>,
        L::Service: Service<Request<RequestBody>, Response = Response<ResponseBody>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Request<RequestBody>>>::Future: Send + 'static,
    {
        self.service = BoxCloneSyncService::new(layer.layer(self.service));
        self
    }

    /// The tower service for requests with any body type, to mount in
    /// another hyper or tower server, or in a router:
    ///
    /// ```no_run
    /// # fn mount(http: vgirpc_http::HttpServer) {
    /// let app = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "my own routes" }))
    ///     .nest_service("/vgi", http.service());
    /// # let _: axum::Router = app;
    /// # }
    /// ```
    ///
    /// A router that strips the mount path, as axum's `nest_service` does,
    /// hands the service paths without it: keep [`HttpConfig`]'s prefix
    /// empty there, while clients use the mount path as their prefix.
    ///
    /// Timeouts and the connection limit belong to the server that owns the
    /// connections; [`HttpServer::serve`] applies them, a host server
    /// applies its own.
    pub fn service<B>(&self) -> HttpService<B>
    where
        B: http_body::Body + Send + 'static,
        B::Data: bytes::Buf,
        B::Error: Into<BoxError>,
    {
        BoxCloneSyncService::new(
            self.service
                .clone()
                .map_request(|request: Request<B>| request.map(body::request_body)),
        )
    }
}

/// The headers every response carries (porting guide, "Capability discovery").
/// Response headers a browser script of another origin needs to read
/// besides the fixed ones [`CorsConfig`] exposes: the capabilities, and on
/// sticky servers the session headers and their echoes.
fn exposed_headers(capabilities: &HeaderMap, sticky: Option<&StickyConfig>) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = capabilities.keys().cloned().collect();
    if let Some(sticky) = sticky {
        names.push(HeaderName::from_static(sticky::SESSION));
        names.push(HeaderName::from_static(sticky::SESSION_CLOSE));
        names.extend(
            sticky
                .echo_header_names()
                .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok()),
        );
    }
    names
}

fn capability_headers(config: &HttpConfig) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| -> Result<(), HttpError> {
        let value = HeaderValue::from_str(&value)
            .map_err(|_| HttpError::Config(format!("invalid {name} value {value:?}")))?;
        headers.insert(HeaderName::from_static(name), value);
        Ok(())
    };
    if let Some(bytes) = config.max_request_bytes {
        put("vgi-max-request-bytes", bytes.to_string())?;
    }
    if let Some(bytes) = config.max_response_bytes {
        put("vgi-max-response-bytes", bytes.to_string())?;
    }
    if let Some(bytes) = config.max_externalized_response_bytes {
        put("vgi-max-externalized-response-bytes", bytes.to_string())?;
    }
    put(
        "vgi-externalization-enabled",
        config.external.is_some().to_string(),
    )?;
    if config.upload_urls.is_some() {
        put("vgi-upload-url-support", "true".into())?;
        if let Some(bytes) = config.max_upload_bytes {
            put("vgi-max-upload-bytes", bytes.to_string())?;
        }
    }
    put("vgi-supported-encodings", ZSTD.into())?;
    if let Some(sticky) = &config.sticky {
        for (name, value) in sticky.capability_headers() {
            put(name, value)?;
        }
    }
    Ok(headers)
}
