//! Requests the server itself makes: uploads to object storage and fetches
//! of the URLs in pointer batches.
//!
//! HTTP/1.1, one connection per request, over TLS for `https://` URLs:
//! rustls with the system's roots (which honor `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`), as the client crate connects. The calls block, because
//! they run on the blocking threads that execute requests, never on the
//! async reactor.
//!
//! [`ExternalStorage`]: crate::ExternalStorage

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::HttpError;

/// How long one outgoing request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A response to an outgoing request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Sends one request and waits for the whole response, whose body may be at
/// most `max_body` bytes.
pub(crate) fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    max_body: usize,
) -> Result<Reply, HttpError> {
    let request = build(method, url, headers, body)?;
    let exchange = async {
        tokio::time::timeout(TIMEOUT, exchange(request, max_body))
            .await
            .map_err(|_| HttpError::outgoing(url, "timed out"))?
    };
    // A method call may run on a worker thread of the serving runtime (see
    // `blocking`), which must give its other tasks away before it blocks;
    // blocking threads can drive the request on the runtime directly, and
    // callers outside any runtime get a small one of their own.
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(exchange))
        }
        Ok(handle) => handle.block_on(exchange),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(exchange),
    }
}

fn build(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| HttpError::outgoing(url, format!("invalid URL: {e}")))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => {
            return Err(HttpError::outgoing(
                url,
                "only http:// and https:// URLs can be reached",
            ));
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| HttpError::outgoing(url, "URL has no host"))?
        .clone();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, authority.as_str())
        .header(CONTENT_LENGTH, body.len());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(Full::new(body))
        .map_err(|e| HttpError::outgoing(url, e.to_string()))?;
    // Kept for the connect step; the request line itself uses the path only.
    request.extensions_mut().insert(authority);
    request.extensions_mut().insert(scheme);
    Ok(request)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// The TLS setup of every outgoing connection, made once: reading the
/// system's roots costs milliseconds.
fn tls() -> TlsConnector {
    static CONNECTOR: OnceLock<TlsConnector> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            TlsConnector::from(Arc::new(config))
        })
        .clone()
}

async fn exchange(request: Request<Full<Bytes>>, max_body: usize) -> Result<Reply, HttpError> {
    let authority = request
        .extensions()
        .get::<http::uri::Authority>()
        .cloned()
        .expect("build() records the authority");
    let scheme = *request
        .extensions()
        .get::<Scheme>()
        .expect("build() records the scheme");
    let (name, default_port) = match scheme {
        Scheme::Http => ("http", 80),
        Scheme::Https => ("https", 443),
    };
    let url = format!("{name}://{authority}{}", request.uri());
    let port = authority.port_u16().unwrap_or(default_port);
    let stream = TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| HttpError::outgoing(&url, format!("cannot connect: {e}")))?;
    match scheme {
        Scheme::Http => send_on(stream, request, &url, max_body).await,
        Scheme::Https => {
            // An IPv6 literal comes bracketed in the authority.
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let server = ServerName::try_from(host.to_owned())
                .map_err(|e| HttpError::outgoing(&url, format!("invalid host name: {e}")))?;
            let stream = tls()
                .connect(server, stream)
                .await
                .map_err(|e| HttpError::outgoing(&url, format!("TLS handshake failed: {e}")))?;
            send_on(stream, request, &url, max_body).await
        }
    }
}

async fn send_on<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    url: &str,
    max_body: usize,
) -> Result<Reply, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let url = url.to_owned();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::outgoing(&url, e.to_string()))?;
    // The connection task ends on its own once the response is read.
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "outgoing connection ended with an error");
        }
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| HttpError::outgoing(&url, e.to_string()))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, max_body)
        .collect()
        .await
        .map_err(|e| HttpError::outgoing(&url, format!("reading the response: {e}")))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
