use std::sync::Arc;
use std::time::Duration;

use vgirpc_token::{DEFAULT_TTL_SECS, TokenKey};

use crate::auth::Authenticate;
use crate::cors::CorsConfig;
use crate::external::ExternalConfig;
#[cfg(feature = "prometheus")]
use crate::metrics::MetricsConfig;
use crate::oauth::OAuthPkce;
use crate::pages::Pages;
use crate::sticky::StickyConfig;
use crate::storage::UploadUrlProvider;
use crate::tls::TlsConfig;

/// The decompressed-size cap of zstd request bodies when neither it nor
/// `max_request_bytes` is configured: 256 MiB. A bomb of a few hundred
/// kilobytes costs the server about this much while it is refused, so the
/// default is a quarter of the plain-body limit (1 GiB): a request that
/// large should travel uncompressed, in several stream turns, or through
/// upload URLs.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;

/// How long a request head may take to arrive: 10 s from its first byte
/// (or from the connection opening). A head is a few hundred bytes, so
/// only a client that trickles it (slowloris) is cut off.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may go without a byte arriving: 30 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a keep-alive connection may sit idle between requests: 75 s,
/// longer than the 60 s idle timeout common in load balancers, so that a
/// balancer's pooled connections are closed by the balancer and not under
/// its feet.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);

/// Connections served at once: 1,000, under the usual limit of 1,024 open
/// files per process. Beyond it new connections wait in the listen queue
/// (and connections that have not sent a byte yet are closed to make room
/// for them).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// The reference's grace period between the first signal and exit; also
/// the default time a shutdown waits for the requests in flight
/// ([`HttpConfig::with_drain_timeout`](crate::HttpConfig::with_drain_timeout)).
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(30);

/// How an [`HttpServer`](crate::HttpServer) serves; every knob has the
/// reference's default.
#[derive(Clone)]
pub struct HttpConfig {
    pub(crate) prefix: String,
    pub(crate) token_key: Option<TokenKey>,
    pub(crate) token_ttl_secs: u64,
    pub(crate) max_request_bytes: Option<u64>,
    pub(crate) max_response_bytes: Option<u64>,
    pub(crate) max_externalized_response_bytes: Option<u64>,
    pub(crate) compression_level: Option<i32>,
    pub(crate) external: Option<ExternalConfig>,
    pub(crate) upload_urls: Option<Arc<dyn UploadUrlProvider>>,
    pub(crate) max_upload_bytes: Option<u64>,
    pub(crate) authenticate: Option<Arc<dyn Authenticate>>,
    pub(crate) sticky: Option<StickyConfig>,
    pub(crate) cors: Option<CorsConfig>,
    pub(crate) max_decompressed_bytes: Option<u64>,
    pub(crate) connections: ConnectionLimits,
    pub(crate) pages: Pages,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) oauth_pkce: Option<OAuthPkce>,
    #[cfg(feature = "prometheus")]
    pub(crate) metrics: Option<MetricsConfig>,
}

/// Timeouts and the connection limit, as [`HttpServer::serve`](crate::HttpServer::serve)
/// applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) body_read_timeout: Option<Duration>,
    pub(crate) keep_alive_timeout: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) drain_timeout: Duration,
    /// HTTP/2 beside HTTP/1.1: by ALPN over TLS, by prior knowledge (h2c)
    /// in plain text.
    pub(crate) http2: bool,
    /// Each HTTP/2 stream a task of its own, rather than polled in its
    /// connection's task.
    pub(crate) http2_stream_tasks: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            body_read_timeout: Some(DEFAULT_BODY_READ_TIMEOUT),
            keep_alive_timeout: Some(DEFAULT_KEEP_ALIVE_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain_timeout: DEFAULT_DRAIN_GRACE,
            http2: true,
            http2_stream_tasks: false,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("HttpConfig");
        f.field("prefix", &self.prefix)
            .field("token_key", &self.token_key)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_response_bytes", &self.max_response_bytes)
            .field(
                "max_externalized_response_bytes",
                &self.max_externalized_response_bytes,
            )
            .field("compression_level", &self.compression_level)
            .field("external", &self.external)
            .field("upload_urls", &self.upload_urls.is_some())
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("authenticate", &self.authenticate.is_some())
            .field("sticky", &self.sticky)
            .field("cors", &self.cors)
            .field("max_decompressed_bytes", &self.max_decompressed_bytes)
            .field("connections", &self.connections)
            .field("pages", &self.pages)
            .field("tls", &self.tls)
            .field("oauth_pkce", &self.oauth_pkce);
        #[cfg(feature = "prometheus")]
        f.field("metrics", &self.metrics);
        f.finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            token_key: None,
            token_ttl_secs: DEFAULT_TTL_SECS,
            max_request_bytes: None,
            max_response_bytes: None,
            max_externalized_response_bytes: None,
            compression_level: Some(3),
            external: None,
            upload_urls: None,
            max_upload_bytes: None,
            authenticate: None,
            sticky: None,
            cors: None,
            max_decompressed_bytes: None,
            connections: ConnectionLimits::default(),
            pages: Pages::default(),
            tls: None,
            oauth_pkce: None,
            #[cfg(feature = "prometheus")]
            metrics: None,
        }
    }
}

impl HttpConfig {
    /// The defaults: endpoints at the root, a token key from
    /// `$VGI_TOKEN_KEY` (else a random one), no advertised caps, zstd
    /// level 3, and the `DEFAULT_*` timeouts and limits of this crate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve the endpoints under `prefix` (e.g. `/vgi`); `GET /health` stays
    /// at `{prefix}/health`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// The key stream-state tokens are sealed with. Workers that must
    /// continue each other's streams need the same key; without one the
    /// server reads `$VGI_TOKEN_KEY`, and failing that uses a random key
    /// (and warns), so tokens only open in the process that minted them.
    pub fn with_token_key(mut self, key: TokenKey) -> Self {
        self.token_key = Some(key);
        self
    }

    /// Maximum age of a token in seconds; 0 disables expiry (default 3600).
    pub fn with_token_ttl(mut self, secs: u64) -> Self {
        self.token_ttl_secs = secs;
        self
    }

    /// Refuse request bodies over `bytes` with `413` (advertised as
    /// `VGI-Max-Request-Bytes`), so clients upload them via vended URLs.
    pub fn with_max_request_bytes(mut self, bytes: u64) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// Cap the HTTP body: unary and exchange answers above it fail, producer
    /// streams continue in a new request (`VGI-Max-Response-Bytes`).
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// Cap the bytes uploaded to external storage for one response
    /// (`VGI-Max-Externalized-Response-Bytes`); exceeding it fails.
    pub fn with_max_externalized_response_bytes(mut self, bytes: u64) -> Self {
        self.max_externalized_response_bytes = Some(bytes);
        self
    }

    /// zstd level for response bodies, or `None` to never compress them.
    /// zstd request bodies are accepted either way (see
    /// [`HttpConfig::with_max_decompressed_bytes`]).
    pub fn with_compression_level(mut self, level: Option<i32>) -> Self {
        self.compression_level = level;
        self
    }

    /// Externalize large batches and resolve client pointer batches.
    pub fn with_external(mut self, external: ExternalConfig) -> Self {
        self.external = Some(external);
        self
    }

    /// Serve `{prefix}/__upload_url__/init`, advertising `max_upload_bytes`.
    pub fn with_upload_urls(
        mut self,
        provider: Arc<dyn UploadUrlProvider>,
        max_upload_bytes: Option<u64>,
    ) -> Self {
        self.upload_urls = Some(provider);
        self.max_upload_bytes = max_upload_bytes;
        self
    }

    /// Enable sticky sessions: methods may bind live objects to their
    /// caller with [`open_session`](vgirpc::CallContext::open_session), the
    /// server advertises `VGI-Sticky-Enabled`, and serves
    /// `DELETE {prefix}/__session__`. Session tokens are sealed with the
    /// token key; each session lives in the worker that opened it.
    pub fn with_sticky(mut self, sticky: StickyConfig) -> Self {
        self.sticky = Some(sticky);
        self
    }

    /// Let browser apps of other origins call the server (`cors_origins`
    /// and `cors_max_age` in the reference). Off by default: browsers then
    /// keep scripts of other origins from reading any answer.
    pub fn with_cors(mut self, cors: CorsConfig) -> Self {
        self.cors = Some(cors);
        self
    }

    /// The pages browsers get: a landing page, the API page and an HTML
    /// `404`, all on by default (see [`Pages`]).
    pub fn with_pages(mut self, pages: Pages) -> Self {
        self.pages = pages;
        self
    }

    /// Authenticate every request except health checks and `OPTIONS`.
    pub fn with_authenticate(mut self, authenticate: impl Authenticate) -> Self {
        self.authenticate = Some(Arc::new(authenticate));
        self
    }

    /// Log browsers in with OAuth 2.0 and PKCE, and proxy browser apps'
    /// token requests (see [`OAuthPkce`]). Needs an authenticator that
    /// publishes [`OAuthResourceMetadata`](crate::OAuthResourceMetadata)
    /// with a `client_id` ([`with_resource_metadata`](crate::with_resource_metadata));
    /// it then also accepts the token of the `_vgi_auth` cookie.
    pub fn with_oauth_pkce(mut self, pkce: OAuthPkce) -> Self {
        self.oauth_pkce = Some(pkce);
        self
    }

    /// Serve Prometheus metrics (calls, durations, calls in flight,
    /// stream-state tokens, sticky sessions) on their own path, as
    /// `metrics` says. Off by default, and then nothing is counted.
    #[cfg(feature = "prometheus")]
    pub fn with_metrics(mut self, metrics: MetricsConfig) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Refuse zstd request bodies that decompress to more than `bytes`
    /// with `413`; they are decoded as a stream and refused as soon as the
    /// output passes the cap, so a bomb costs about `bytes` at most.
    /// Default: 16 × `max_request_bytes` when that is set (the reference's
    /// rule), else [`DEFAULT_MAX_DECOMPRESSED_BYTES`].
    pub fn with_max_decompressed_bytes(mut self, bytes: u64) -> Self {
        self.max_decompressed_bytes = Some(bytes);
        self
    }

    /// How long a request head may take to arrive, from its first byte, or
    /// from the connection opening for a connection's first request; the
    /// connection is closed after it. `None` waits forever. Default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub fn with_header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connections.header_read_timeout = timeout;
        self
    }

    /// How long a request body may go without a byte arriving; the request
    /// is then answered `408 Request Timeout` and its connection closed.
    /// `None` waits forever. Default [`DEFAULT_BODY_READ_TIMEOUT`].
    pub fn with_body_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connections.body_read_timeout = timeout;
        self
    }

    /// How long a keep-alive connection may sit idle after a response
    /// before it is closed. `None` keeps it open until the client closes
    /// it. Default [`DEFAULT_KEEP_ALIVE_TIMEOUT`].
    pub fn with_keep_alive_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connections.keep_alive_timeout = timeout;
        self
    }

    /// Serve at most `connections` connections at once (at least 1).
    /// Beyond it, new connections wait in the listen queue until one
    /// closes, and connections that have not sent a byte yet are closed to
    /// make room; connections that have made a request (being served, or
    /// idle with keep-alive) are never cut for it. Default
    /// [`DEFAULT_MAX_CONNECTIONS`].
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.connections.max_connections = connections;
        self
    }

    /// On shutdown, how long to wait for the requests already received to
    /// be answered before their connections are cut. Default
    /// [`DEFAULT_DRAIN_GRACE`].
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.connections.drain_timeout = timeout;
        self
    }

    /// Serve HTTPS: [`HttpServer::serve`](crate::HttpServer::serve)
    /// completes a TLS handshake on every connection (within the header
    /// read timeout) before its first request.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Whether [`HttpServer::serve`](crate::HttpServer::serve) speaks
    /// HTTP/2 beside HTTP/1.1 (default `true`): offered by ALPN over TLS,
    /// and recognized by its connection preface (h2c with prior knowledge)
    /// in plain text, on the same port.
    pub fn with_http2(mut self, enabled: bool) -> Self {
        self.connections.http2 = enabled;
        self
    }

    /// Whether each HTTP/2 stream runs as a task of its own (default
    /// `false`). By default a connection's streams are polled in the
    /// connection's task, which saves a wake-up of another thread per
    /// request but runs one connection's calls on one thread at a time;
    /// a server behind a proxy that multiplexes many clients over a few
    /// HTTP/2 connections spreads their calls over its cores with `true`.
    /// Either way, a stream whose poll blocks its thread for 5 ms or more
    /// sends its connection's streams to tasks of their own.
    pub fn with_http2_stream_tasks(mut self, enabled: bool) -> Self {
        self.connections.http2_stream_tasks = enabled;
        self
    }
}
