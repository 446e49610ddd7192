//! What an HTTP client is told about its server: prefix, credentials,
//! compression, retries, timeout, the largest response accepted, TLS, and
//! how externalized batches are fetched and large requests uploaded.

use std::time::Duration;

use vgirpc_fetch::{FetchConfig, TlsSettings};

use super::RetryPolicy;

/// How an HTTP client ([`HttpTransport`](super::HttpTransport) or
/// [`AsyncClient::connect_http_with`](crate::AsyncClient::connect_http_with))
/// talks to its server.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub(super) prefix: String,
    pub(super) bearer_token: Option<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) compression_level: Option<i32>,
    pub(super) compress_loopback: bool,
    pub(super) retry: RetryPolicy,
    pub(super) timeout: Option<Duration>,
    pub(super) max_response_bytes: usize,
    pub(super) tls: TlsSettings,
    pub(super) http2_prior_knowledge: bool,
    pub(super) fetch: FetchConfig,
    pub(super) upload_large_requests: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            bearer_token: None,
            headers: Vec::new(),
            compression_level: Some(3),
            compress_loopback: false,
            retry: RetryPolicy::default(),
            timeout: None,
            max_response_bytes: 1 << 30,
            tls: TlsSettings::new(),
            http2_prior_knowledge: false,
            fetch: FetchConfig::default(),
            upload_large_requests: true,
        }
    }
}

impl HttpOptions {
    /// The defaults: endpoints at the root of the URL, zstd level 3 request
    /// bodies, [`RetryPolicy::default`], no timeout, responses up to 1 GiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// The path the server mounts its endpoints under (e.g. `/vgi`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let prefix = prefix.trim_end_matches('/');
        self.prefix = if prefix.is_empty() || prefix.starts_with('/') {
            prefix.to_owned()
        } else {
            format!("/{prefix}")
        };
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Sends the header `name: value` with every request to the server
    /// (an API key, a tenant, a routing hint); repeat for more. A name or
    /// value HTTP does not allow is refused when the client is made.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// zstd level for request bodies, or `None` to send them uncompressed.
    /// A body zstd would not shrink (by a tenth, judged from samples, for
    /// bodies over 64 KiB) is sent uncompressed anyway. Responses are asked
    /// for in zstd either way, except from a loopback server (see
    /// [`HttpOptions::compress_loopback`]).
    pub fn compression_level(mut self, level: Option<i32>) -> Self {
        self.compression_level = level;
        self
    }

    /// Whether zstd is used with a server on this host (default `false`).
    ///
    /// A URL whose host is `localhost`, a `*.localhost` name or a loopback
    /// address reaches a server through memory, which moves bytes several
    /// times faster than zstd can shrink them: compressing there only costs
    /// both sides CPU (an 8 MB float64 exchange ran at a fifth of its
    /// uncompressed speed). So by default such a client neither compresses
    /// its requests nor sends `Accept-Encoding: zstd`. Turn this on when
    /// the loopback address is a proxy or tunnel to a slower link.
    pub fn compress_loopback(mut self, enabled: bool) -> Self {
        self.compress_loopback = enabled;
        self
    }

    /// When failed requests are repeated (see [`RetryPolicy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The longest one request may take, connecting included; a request
    /// that takes longer fails with [`ClientError::Timeout`](crate::ClientError::Timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The largest response body accepted, after decompression.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Trusts the CA certificates of `pem` for `https://` servers, beside
    /// the system's roots; repeat for more.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls = self.tls.ca_certificate_pem(pem);
        self
    }

    /// Whether `https://` servers may chain to the system's roots
    /// (default `true`); with `false` only the CAs added by
    /// [`ca_certificate_pem`](Self::ca_certificate_pem) are trusted.
    pub fn system_roots(mut self, trusted: bool) -> Self {
        self.tls = self.tls.system_roots(trusted);
        self
    }

    /// Presents the client certificate `chain_pem` (leaf first), signed
    /// with `key_pem`, to `https://` servers that ask for one (mTLS).
    pub fn client_certificate_pem(
        mut self,
        chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls = self.tls.client_certificate_pem(chain_pem, key_pem);
        self
    }

    /// Speaks HTTP/2 from the first byte (`h2c` with prior knowledge on
    /// `http://`), for servers known to support it. Without it, HTTP/2
    /// is used over `https://` when the server offers it by ALPN, and
    /// HTTP/1.1 otherwise.
    pub fn http2_prior_knowledge(mut self, enabled: bool) -> Self {
        self.http2_prior_knowledge = enabled;
        self
    }

    /// How batches the server externalized are fetched: chunking,
    /// hedging, retries, deadline, size cap, allowed locations (default
    /// [`FetchConfig::default`], the reference's). The fetches trust and
    /// present what the connection to the server does.
    pub fn fetch_config(mut self, config: FetchConfig) -> Self {
        self.fetch = config;
        self
    }

    /// Whether a request the server refuses as too large (`413`) is
    /// uploaded to a URL the server vends and sent again as a pointer
    /// batch, when the server advertises upload URLs (default `true`, as
    /// the reference client does).
    pub fn upload_large_requests(mut self, enabled: bool) -> Self {
        self.upload_large_requests = enabled;
        self
    }
}
