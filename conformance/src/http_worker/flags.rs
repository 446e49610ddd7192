//! The `--http` flags: parsed one by one, then checked together and
//! turned into the server's configuration.

use std::sync::Arc;
use std::time::Duration;

use vgirpc_http::{
    ClientAuth, CorsConfig, DEFAULT_CORS_MAX_AGE, ExternalConfig, ExternalStorage, HttpConfig,
    MetricsConfig, StickyConfig, TlsConfig, TokenKey, UploadUrlProvider,
};
use vgirpc_storage::S3StorageBuilder;

use super::auth_flags::{AuthFlags, PkceFlags};
use super::values::{number, seconds, timeout};

/// Upload size advertised with vended URLs, as the reference worker does.
const MAX_UPLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// The echo header the suite's `test_echo_header_round_trip` expects.
const ECHO_HEADER: (&str, &str) = ("x-vgi-conformance-echo", "conformance-fixed-marker");

/// The HTTP flags, collected while the command line is parsed.
#[derive(Debug, Default)]
pub(crate) struct HttpFlags {
    enabled: bool,
    host: Option<String>,
    port: Option<u16>,
    token_key: Option<String>,
    fake_storage: Option<String>,
    s3_storage: bool,
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
    metrics_path: Option<String>,
    pkce: PkceFlags,
    auth: AuthFlags,
}

/// What `--http` serves.
#[derive(Debug)]
pub(crate) struct HttpOptions {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) reject_all: bool,
    pub(super) token_key: Option<TokenKey>,
    pub(super) config: HttpConfig,
    pub(super) drain_grace: Duration,
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
            "--s3-storage" => self.s3_storage = true,
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
            "--metrics-path" => self.metrics_path = Some(value()?),
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
                || self.s3_storage
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
                || self.metrics_path.is_some()
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
        type Storage = (Arc<dyn ExternalStorage>, Arc<dyn UploadUrlProvider>);
        let storage: Option<(Storage, Option<String>)> = match (self.fake_storage, self.s3_storage)
        {
            (Some(_), true) => {
                return Err("--fake-storage and --s3-storage exclude each other".into());
            }
            (Some(url), false) => {
                let fake = Arc::new(vgirpc_http::testing::FakeStorageClient::new(url));
                Some(((fake.clone(), fake), None))
            }
            (None, true) => {
                let s3 = Arc::new(
                    S3StorageBuilder::from_env()
                        .build()
                        .map_err(|e| format!("--s3-storage: {e}"))?,
                );
                let location = s3.location().to_owned();
                Some(((s3.clone(), s3), Some(location)))
            }
            (None, false) => None,
        };
        if let Some(((storage, uploads), location)) = storage {
            let external = ExternalConfig::new(storage).with_threshold(threshold);
            let mut external = match location {
                // Pointer batches may name only the bucket's objects.
                Some(location) => external.with_allowed_locations([location]),
                // The fake storage's URLs follow no prefix we could name.
                None => external.allow_any_url(),
            };
            if self.zstd_uploads {
                external = external.with_compression(3);
            }
            config = config
                .with_external(external)
                .with_upload_urls(uploads, Some(MAX_UPLOAD_BYTES))
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
        if let Some(path) = self.metrics_path {
            config = config.with_metrics(MetricsConfig::new().with_path(path));
        }
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
            "--metrics-path",
            "/internal/metrics",
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
            r#"metrics: Some(MetricsConfig { path: "/internal/metrics", authenticated: false })"#,
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
            parse(&["--metrics-path", "/metrics"])
                .unwrap_err()
                .contains("--http")
        );
        assert!(parse(&["--s3-storage"]).unwrap_err().contains("--http"));
        let both = [
            "--http",
            "--s3-storage",
            "--fake-storage",
            "http://127.0.0.1:9",
        ];
        assert!(parse(&both).unwrap_err().contains("exclude each other"));
        assert!(
            parse(&["--http", "--cors-max-age", "5"])
                .unwrap_err()
                .contains("--cors-origin")
        );
        assert!(parse(&[]).unwrap().is_none());
    }
}
