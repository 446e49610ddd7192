//! The server's own requests (pointer-batch fetches, storage uploads, key
//! sets) reach `https://` URLs, trusting the system's roots, which
//! `SSL_CERT_FILE` replaces.
//!
//! The roots are read once per process, so each case runs in a child
//! process of this test binary, with its own environment.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod errors;
}

use std::convert::Infallible;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use common::errors::assert_error_contains;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vgirpc_test_support::pki::Pki;

/// Set in a child: the URL to fetch.
const URL_ENV: &str = "VGIRPC_TEST_FETCH_URL";
/// Set in a child: `ok` or `refused`.
const EXPECT_ENV: &str = "VGIRPC_TEST_FETCH_EXPECT";
const STORED: &[u8] = b"stored bytes";

/// Serves `STORED` over HTTPS with `pki`'s server certificate; returns the
/// port.
fn serve_https(pki: &Pki) -> u16 {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    vgirpc_test_support::serve_in_process(|listener| async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends here.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(STORED))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Runs the child half of this test with `env`; whether it passed.
fn child(env: &[(&str, &str)]) -> bool {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        "fetches_reach_https_servers_the_roots_trust",
        "--nocapture",
    ]);
    command
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    for (name, value) in env {
        command.env(name, value);
    }
    command.status().unwrap().success()
}

#[test]
fn fetches_reach_https_servers_the_roots_trust() {
    if let Ok(url) = std::env::var(URL_ENV) {
        let fetched = vgirpc_http::fetch_url(&url);
        match std::env::var(EXPECT_ENV).as_deref() {
            Ok("ok") => assert_eq!(fetched.unwrap(), STORED),
            _ => {
                let err = fetched.expect_err("an untrusted server");
                assert_error_contains(&err, "TLS handshake failed");
                assert_error_contains(&err, "127.0.0.1");
                let message = err.to_string();
                assert!(
                    !message.contains("secret"),
                    "a signed URL leaked: {message}"
                );
            }
        }
        return;
    }
    let pki = Pki::generate();
    let port = serve_https(&pki);
    let ca = std::env::temp_dir().join(format!("vgirpc-outgoing-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{port}/object?signature=secret");
    let ca_path = ca.to_str().unwrap();
    assert!(child(&[
        (URL_ENV, &url),
        (EXPECT_ENV, "ok"),
        ("SSL_CERT_FILE", ca_path)
    ]));
    assert!(child(&[(URL_ENV, &url), (EXPECT_ENV, "refused")]));
    std::fs::remove_file(&ca).unwrap();
}
