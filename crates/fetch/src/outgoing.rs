//! The outgoing HTTP(S) client: one hyper client over the shared TLS
//! connector, whole responses read under a byte cap and a timeout, and
//! a way for blocking code to wait for it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::FetchError;
use crate::error::shown;
use crate::tls::TlsSettings;

/// How long a request of [`Outgoing::send`] may take by default,
/// connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as sent (not decoded).
    pub body: Bytes,
}

/// An outgoing HTTP(S) client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Outgoing {
    client: HyperClient<crate::Connector, Full<Bytes>>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").finish_non_exhaustive()
    }
}

impl Outgoing {
    /// A client trusting and presenting what `tls` says, keeping
    /// connections alive between requests. Connections are driven by
    /// tasks of the runtime that opened them, so use it from one runtime.
    ///
    /// # Errors
    ///
    /// [`FetchError::Tls`] when the settings do not parse.
    pub fn new(tls: &TlsSettings) -> Result<Self, FetchError> {
        Ok(Self {
            client: HyperClient::builder(TokioExecutor::new()).build(tls.connector(true)?),
        })
    }

    /// The system's roots and one connection per request, for blocking
    /// callers ([`block_on`]), whose runtimes may end between requests.
    /// Reading the roots costs milliseconds, so it is done once.
    pub fn system() -> &'static Outgoing {
        static SYSTEM: OnceLock<Outgoing> = OnceLock::new();
        SYSTEM.get_or_init(|| {
            let connector = TlsSettings::new()
                .connector(true)
                .expect("the system's roots alone always make a TLS configuration");
            Outgoing {
                client: HyperClient::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(0)
                    .build(connector),
            }
        })
    }

    /// Sends one request to `url` (`http://` or `https://`) and reads the
    /// whole response, whose body may be at most `max_body` bytes, within
    /// `timeout`.
    ///
    /// # Errors
    ///
    /// Why no whole response came: the URL, connecting, the connection,
    /// the timeout, a body above `max_body` or cut short. A response of
    /// any status is a reply, not an error.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        max_body: usize,
        timeout: Duration,
    ) -> Result<Reply, FetchError> {
        let uri: Uri = url.parse().map_err(|e| FetchError::NotAllowed {
            url: shown(url),
            reason: format!("invalid URL: {e}"),
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(FetchError::NotAllowed {
                url: shown(url),
                reason: "only http:// and https:// URLs can be reached".into(),
            });
        }
        let head = method == Method::HEAD;
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| FetchError::NotAllowed {
                url: shown(url),
                reason: e.to_string(),
            })?;
        tokio::time::timeout(timeout, self.exchange(request, url, head, max_body))
            .await
            .map_err(|_| FetchError::Timeout {
                url: shown(url),
                after: timeout,
            })?
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        url: &str,
        head: bool,
        max_body: usize,
    ) -> Result<Reply, FetchError> {
        let response = self.client.request(request).await.map_err(|e| {
            if let Some(tls) = tls_failure(&e) {
                return FetchError::Handshake {
                    url: shown(url),
                    reason: tls.to_string(),
                };
            }
            let reason = with_causes(&e);
            if e.is_connect() {
                FetchError::Connect {
                    url: shown(url),
                    reason,
                }
            } else {
                FetchError::Transport {
                    url: shown(url),
                    reason,
                }
            }
        })?;
        let (parts, mut body) = response.into_parts();
        let announced: Option<usize> = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse().ok());
        if !head && let Some(length) = announced.filter(|n| *n > max_body) {
            return Err(FetchError::TooLarge {
                url: shown(url),
                what: format!("Content-Length {length}"),
                cap: max_body,
            });
        }
        let mut data = Vec::with_capacity(if head {
            0
        } else {
            announced.unwrap_or(0).min(max_body)
        });
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if cut_short(&e) {
                    let of = announced.map_or(String::new(), |n| format!(" of {n}"));
                    FetchError::Truncated {
                        url: shown(url),
                        detail: format!("{}{of} bytes arrived", data.len()),
                    }
                } else {
                    FetchError::Transport {
                        url: shown(url),
                        reason: format!("reading the response: {}", with_causes(&e)),
                    }
                }
            })?;
            if let Ok(chunk) = frame.into_data() {
                if data.len() + chunk.len() > max_body {
                    return Err(FetchError::TooLarge {
                        url: shown(url),
                        what: "the body".into(),
                        cap: max_body,
                    });
                }
                data.extend_from_slice(&chunk);
            }
        }
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(data),
        })
    }

    /// `PUT`s `body` to `url` (an upload URL a server vended) as
    /// `content_type`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), and [`FetchError::Status`] when the store
    /// does not answer 2xx.
    pub async fn put(
        &self,
        url: &str,
        body: Bytes,
        content_type: &str,
        timeout: Duration,
    ) -> Result<(), FetchError> {
        let reply = self
            .send(
                Method::PUT,
                url,
                // Azure's Put Blob refuses a PUT without the blob type, and a
                // SAS URL cannot carry it; S3 and GCS ignore a header their
                // signature does not name.
                &[
                    (CONTENT_TYPE.as_str(), content_type),
                    ("x-ms-blob-type", "BlockBlob"),
                ],
                body,
                1 << 20,
                timeout,
            )
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(refusal(url, &reply))
        }
    }
}

/// The rustls error under a failed connection, if that is what it was:
/// hyper-rustls hands it up inside I/O errors (two deep), whose `source`
/// skips the error they wrap.
fn tls_failure<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let wrapped = error
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| tls_failure(inner));
    wrapped.or_else(|| error.source().and_then(tls_failure))
}

/// Whether the connection closed before the body's announced length,
/// which hyper reports as an end of file under a body error.
fn cut_short(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
        {
            return true;
        }
        source = cause.source();
    }
    error.is_incomplete_message()
}

/// A non-success answer, with the store's error code and message when the
/// body is S3-style XML.
pub(crate) fn refusal(url: &str, reply: &Reply) -> FetchError {
    FetchError::Status {
        url: shown(url),
        status: reply.status,
        detail: store_error_detail(&reply.body),
    }
}

/// ` (Code: Message)` from an S3-style XML error body, or nothing.
fn store_error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let element = |name: &str| {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(text[start..end].trim().to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ => String::new(),
    }
}

/// `error` and its sources, outermost first: hyper's own message alone
/// ("client error (Connect)") hides what went wrong, such as a certificate
/// that is not trusted.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    message
}

/// Runs `future` to its end from blocking code: on the caller's runtime
/// when there is one, else on a small one made for it.
///
/// On a worker thread of a multi-threaded runtime the thread first hands
/// its other tasks away, since it is about to block; a current-thread
/// runtime's handle drives the future from a thread outside it, such as
/// one of its blocking threads.
pub fn block_on<F: Future>(future: F) -> F::Output {
    use tokio::runtime::{Builder, Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        Ok(handle) => handle.block_on(future),
        Err(_) => Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime can be made")
            .block_on(future),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_error_detail_names_code_and_message() {
        let body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(
            store_error_detail(body),
            " (NoSuchKey: The specified key does not exist.)"
        );
        assert_eq!(store_error_detail(b"not found"), "");
    }
}
