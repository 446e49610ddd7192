//! The one TLS setup of every outgoing connection, the vgi-rpc client's
//! and the fetcher's alike: rustls on ring, the system's roots (which
//! honor `SSL_CERT_FILE` and `SSL_CERT_DIR`) and any extra CA, a client
//! certificate when given, HTTP/1.1 and HTTP/2 offered by ALPN.

use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::FetchError;

/// The connector under every outgoing client: plain TCP for `http://`,
/// TLS for `https://`.
pub type Connector = HttpsConnector<HttpConnector>;

/// What `https://` connections trust and present.
#[derive(Clone)]
pub struct TlsSettings {
    system_roots: bool,
    ca_certificates: Vec<Vec<u8>>,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsSettings {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("system_roots", &self.system_roots)
            .field("ca_certificates", &self.ca_certificates.len())
            .field("client_identity", &self.client_identity.is_some())
            .finish()
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            system_roots: true,
            ca_certificates: Vec::new(),
            client_identity: None,
        }
    }
}

fn tls_error(what: impl std::fmt::Display) -> FetchError {
    FetchError::Tls(what.to_string())
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, FetchError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error(format_args!("{what}: {err}")))?;
    if certs.is_empty() {
        return Err(tls_error(format_args!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

impl TlsSettings {
    /// The system's roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether servers may chain to the system's roots (default `true`);
    /// with `false` only the CAs of [`ca_certificate_pem`](Self::ca_certificate_pem)
    /// are trusted.
    pub fn system_roots(mut self, trusted: bool) -> Self {
        self.system_roots = trusted;
        self
    }

    /// Trusts the CA certificates of `pem` too; repeat for more.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates.push(pem.into());
        self
    }

    /// Presents the certificate `chain_pem` (leaf first), signed with
    /// `key_pem`, to servers that ask for one (mTLS).
    pub fn client_certificate_pem(
        mut self,
        chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some((chain_pem.into(), key_pem.into()));
        self
    }

    fn roots(&self) -> Result<RootCertStore, FetchError> {
        let mut roots = RootCertStore::empty();
        if self.system_roots {
            // A system store with some unreadable entries still serves the
            // readable ones; an empty one leaves only the extra CAs.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
        for pem in &self.ca_certificates {
            for cert in certificates(pem, "CA certificate")? {
                roots
                    .add(cert)
                    .map_err(|err| tls_error(format_args!("CA certificate: {err}")))?;
            }
        }
        Ok(roots)
    }

    /// The rustls configuration, for connections made without hyper.
    ///
    /// # Errors
    ///
    /// [`FetchError::Tls`] for a CA or client certificate that does not
    /// parse, or a key that does not fit its certificate.
    pub fn client_config(&self) -> Result<ClientConfig, FetchError> {
        self.config_with(self.roots()?)
    }

    fn config_with(&self, roots: RootCertStore) -> Result<ClientConfig, FetchError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots);
        match &self.client_identity {
            Some((chain, key)) => {
                let chain = certificates(chain, "client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|err| tls_error(format_args!("client key: {err}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| tls_error(format_args!("client certificate and key: {err}")))
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The connector for hyper clients. With `https` false the roots are
    /// not read (milliseconds saved on a client of an `http://` server),
    /// so `https://` URLs would then fail to verify.
    ///
    /// # Errors
    ///
    /// As [`client_config`](Self::client_config).
    pub fn connector(&self, https: bool) -> Result<Connector, FetchError> {
        let roots = if https {
            self.roots()?
        } else {
            RootCertStore::empty()
        };
        let config = self.config_with(roots)?;
        let mut http = HttpConnector::new();
        // The scheme decides; the HTTPS wrapper refuses nothing itself.
        http.enforce_http(false);
        http.set_nodelay(true);
        Ok(HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http))
    }
}
