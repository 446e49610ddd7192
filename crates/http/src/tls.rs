//! TLS for [`HttpServer::serve`](crate::HttpServer::serve): the server's
//! certificate from PEM, ALPN offering HTTP/2 beside HTTP/1.1, optional
//! verification of client certificates, and reloading the certificate
//! without a restart.
//!
//! Everything runs on rustls with its `ring` provider, named explicitly so
//! that another crate of the program enabling a second provider cannot
//! make the choice ambiguous.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::HttpError;

/// Whether clients must present a certificate signed by the client CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a certificate is served (and authenticated by
    /// other means); one with a certificate the CA did not sign is refused
    /// during the handshake.
    Optional,
    /// The handshake fails without a certificate the CA signed.
    Required,
}

/// Where the server's certificate and key come from.
#[derive(Clone)]
enum Source {
    Files { cert_chain: PathBuf, key: PathBuf },
    Pem { cert_chain: Vec<u8>, key: Vec<u8> },
}

/// The TLS setup of a server: its certificate chain and private key, and
/// optionally the CA that signs client certificates.
///
/// ```no_run
/// # fn main() -> Result<(), vgirpc_http::HttpError> {
/// use vgirpc_http::{ClientAuth, HttpConfig, TlsConfig};
///
/// let tls = TlsConfig::from_pem_files("server.pem", "server.key")?
///     .with_client_ca_file("clients-ca.pem", ClientAuth::Optional)?;
/// let config = HttpConfig::new().with_tls(tls);
/// # let _ = config;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    source: Source,
    /// Loaded once up front so a bad file is reported when the server is
    /// built, not at its first handshake.
    key: Arc<CertifiedKey>,
    client_ca: Option<(Arc<RootCertStore>, ClientAuth)>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TlsConfig");
        if let Source::Files { cert_chain, key } = &self.source {
            debug.field("cert_chain", cert_chain).field("key", key);
        }
        debug
            .field(
                "client_auth",
                &self.client_ca.as_ref().map(|(_, auth)| auth),
            )
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: impl fmt::Display) -> HttpError {
    HttpError::Config(format!("TLS: {what}"))
}

fn read(path: &Path) -> Result<Vec<u8>, HttpError> {
    std::fs::read(path)
        .map_err(|err| tls_error(format_args!("cannot read {}: {err}", path.display())))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error(format_args!("{what}: {err}")))?;
    if certs.is_empty() {
        return Err(tls_error(format_args!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

fn certified_key(cert_chain: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, HttpError> {
    let chain = certificates(cert_chain, "certificate chain")?;
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|err| tls_error(format_args!("private key: {err}")))?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|err| tls_error(format_args!("certificate and key: {err}")))?;
    Ok(Arc::new(certified))
}

impl Source {
    fn load(&self) -> Result<Arc<CertifiedKey>, HttpError> {
        match self {
            Source::Files { cert_chain, key } => certified_key(&read(cert_chain)?, &read(key)?),
            Source::Pem { cert_chain, key } => certified_key(cert_chain, key),
        }
    }
}

impl TlsConfig {
    /// The certificate chain (leaf first) and private key in PEM files.
    /// [`TlsReload::reload`] reads the files again.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, HttpError> {
        Self::from_source(Source::Files {
            cert_chain: cert_chain.as_ref().to_owned(),
            key: key.as_ref().to_owned(),
        })
    }

    /// The certificate chain (leaf first) and private key as PEM text.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, HttpError> {
        Self::from_source(Source::Pem {
            cert_chain: cert_chain.to_vec(),
            key: key.to_vec(),
        })
    }

    fn from_source(source: Source) -> Result<Self, HttpError> {
        Ok(Self {
            key: source.load()?,
            source,
            client_ca: None,
        })
    }

    /// Verifies client certificates against the CA certificates in `pem`:
    /// a certificate that does not chain to them fails the handshake, and
    /// the one that does reaches authentication as a
    /// [`PeerCertificate`](crate::PeerCertificate) request extension (see
    /// [`mtls_native`](crate::mtls_native)).
    pub fn with_client_ca_pem(mut self, pem: &[u8], auth: ClientAuth) -> Result<Self, HttpError> {
        let mut roots = RootCertStore::empty();
        for cert in certificates(pem, "client CA")? {
            roots
                .add(cert)
                .map_err(|err| tls_error(format_args!("client CA: {err}")))?;
        }
        self.client_ca = Some((Arc::new(roots), auth));
        Ok(self)
    }

    /// [`with_client_ca_pem`](Self::with_client_ca_pem) from a file.
    pub fn with_client_ca_file(
        self,
        path: impl AsRef<Path>,
        auth: ClientAuth,
    ) -> Result<Self, HttpError> {
        let pem = read(path.as_ref())?;
        self.with_client_ca_pem(&pem, auth)
    }

    /// The acceptor for connections, offering `h2` by ALPN when `http2`,
    /// and the handle that swaps the certificate.
    pub(crate) fn acceptor(&self, http2: bool) -> Result<(TlsAcceptor, TlsReload), HttpError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some((roots, auth)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
                let verifier = match auth {
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                    ClientAuth::Required => verifier,
                };
                builder.with_client_cert_verifier(verifier.build().map_err(tls_error)?)
            }
        };
        let reload = TlsReload {
            source: self.source.clone(),
            current: Arc::new(RwLock::new(self.key.clone())),
        };
        let mut config = builder.with_cert_resolver(Arc::new(reload.clone()));
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok((TlsAcceptor::from(Arc::new(config)), reload))
    }
}

/// Swaps a running server's certificate: [`reload`](Self::reload) reads
/// the PEM files again, and new handshakes use what it read; connections
/// already open keep theirs. Get it from
/// [`HttpServer::tls_reload`](crate::HttpServer::tls_reload), for example
/// to reload on `SIGHUP` after a certificate renewal.
#[derive(Clone)]
pub struct TlsReload {
    source: Source,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl fmt::Debug for TlsReload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReload").finish_non_exhaustive()
    }
}

impl TlsReload {
    /// Loads the certificate and key again. On an error (a file half
    /// written, a key that does not match) the server keeps the one it
    /// has.
    pub fn reload(&self) -> Result<(), HttpError> {
        let key = self.source.load()?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
        Ok(())
    }
}

impl ResolvesServerCert for TlsReload {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Files { cert_chain, key } => f
                .debug_struct("Files")
                .field("cert_chain", cert_chain)
                .field("key", key)
                .finish(),
            Source::Pem { .. } => f.write_str("Pem"),
        }
    }
}
