//! The connector under the HTTP client: plain TCP for `http://`, rustls
//! for `https://` (the system's roots plus any CA the options add, a
//! client certificate when given), with HTTP/2 offered by ALPN.

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::HttpOptions;
use crate::ClientError;

/// The connector of every HTTP client.
pub(super) type Connector = HttpsConnector<HttpConnector>;

fn tls_error(what: impl std::fmt::Display) -> ClientError {
    ClientError::Config(format!("TLS: {what}"))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| tls_error(format_args!("{what}: {err}")))?;
    if certs.is_empty() {
        return Err(tls_error(format_args!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

/// The roots a server certificate may chain to: the system's, unless the
/// options turn them off, and the extra CAs of the options.
fn roots(options: &HttpOptions) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    if options.tls.system_roots {
        // A system store with some unreadable entries still serves the
        // readable ones; an empty one leaves only the extra CAs.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
    }
    for pem in &options.tls.ca_certificates {
        for cert in certificates(pem, "CA certificate")? {
            roots
                .add(cert)
                .map_err(|err| tls_error(format_args!("CA certificate: {err}")))?;
        }
    }
    Ok(roots)
}

/// The connector for a client of `scheme` with `options`. The TLS setup
/// (reading the system's roots) is skipped for plain `http://`.
pub(super) fn connector(https: bool, options: &HttpOptions) -> Result<Connector, ClientError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(if https {
            roots(options)?
        } else {
            RootCertStore::empty()
        });
    let config = match &options.tls.client_identity {
        Some((chain, key)) => {
            let chain = certificates(chain, "client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|err| tls_error(format_args!("client key: {err}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| tls_error(format_args!("client certificate and key: {err}")))?
        }
        None => builder.with_no_client_auth(),
    };
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
