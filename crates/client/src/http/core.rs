//! Sending requests: one hyper client with pooled keep-alive connections,
//! the vgi-rpc headers, zstd both ways, retries and the timeout. Shared by
//! the blocking transport and the async client; everything here is async
//! and takes `&self`, so concurrent requests run concurrently.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap,
    HeaderName, HeaderValue, RETRY_AFTER,
};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use vgirpc_wire::ipc::EAGER_RESERVE_BYTES;

use vgirpc_fetch::Fetcher;

use super::compress::{self, is_loopback};
use super::payload::{Payload, PayloadBody};
use super::retry::{is_transient, parse_retry_after};
use super::sticky::{self, SessionState};
use super::tls::{self, Connector};
use super::{ARROW_STREAM, HttpOptions, ZSTD};
use crate::ClientError;

/// One server at one endpoint, and the connections to it.
pub(crate) struct HttpCore {
    client: HyperClient<Connector, PayloadBody>,
    /// The URL the endpoint paths are appended to: the base URL and the
    /// prefix, without a trailing slash.
    endpoint: String,
    /// [`HttpOptions::header`]s, checked once.
    extra_headers: HeaderMap,
    /// Whether bodies go in zstd both ways: off for a loopback server
    /// unless [`HttpOptions::compress_loopback`] asks for it.
    compress: bool,
    pub(super) options: HttpOptions,
    /// Requests sent so far, retries included.
    requests: AtomicU64,
    /// Made on the first externalized batch or upload, as it reads the
    /// system's roots even for a plain `http://` server.
    fetcher: tokio::sync::OnceCell<Fetcher>,
    /// The request cap a `413` named (`VGI-Max-Request-Bytes`), 0 before
    /// any: larger requests then go by upload URL without trying inline.
    pub(super) request_cap: AtomicU64,
}

impl std::fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCore")
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A response, its body decoded.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

/// Whether a request may be sent again after a failure that is not a
/// failure to connect (see [`RetryPolicy`](super::RetryPolicy)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    /// Repeating asks for the same answer.
    Safe,
    /// Repeating could run the method twice.
    Never,
}

impl HttpCore {
    /// A client of the server at `url`, `http://` or `https://`. No
    /// connection is made yet; connections are driven by tasks of the
    /// runtime that sends the first request on them.
    pub(crate) fn new(url: &str, options: HttpOptions) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/');
        let uri: Uri = base
            .parse()
            .map_err(|e| ClientError::Config(format!("invalid URL {url:?}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(ClientError::Config(format!(
                    "unsupported URL scheme {other:?} in {url:?}: use http:// or https://"
                )));
            }
            None => {
                return Err(ClientError::Config(format!(
                    "{url:?} is not an absolute http:// or https:// URL"
                )));
            }
        };
        if uri.query().is_some() {
            return Err(ClientError::Config(format!(
                "{url:?} has a query string; give the base URL only"
            )));
        }
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let invalid = |what: &str| {
                ClientError::Config(format!("header {name:?}: not a valid HTTP header {what}"))
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid("value"))?;
            extra_headers.append(name, value);
        }
        let compress = options.compress_loopback || !uri.host().is_some_and(is_loopback);
        Ok(Self {
            client: HyperClient::builder(TokioExecutor::new())
                .http2_only(options.http2_prior_knowledge)
                .build(tls::connector(https, &options)?),
            endpoint: format!("{base}{}", options.prefix),
            extra_headers,
            compress,
            options,
            requests: AtomicU64::new(0),
            fetcher: tokio::sync::OnceCell::new(),
            request_cap: AtomicU64::new(0),
        })
    }

    /// The fetcher of externalized batches and uploads.
    pub(super) async fn fetcher(&self) -> Result<&Fetcher, ClientError> {
        self.fetcher
            .get_or_try_init(|| async { tls::fetcher(&self.options) })
            .await
    }

    pub(super) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(super) fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// POSTs an Arrow body to `{endpoint}{path}` with the vgi-rpc headers,
    /// and keeps up with the sticky session the response may open or close.
    /// A body the server refuses as too large goes by an upload URL when
    /// the server offers them (see [`HttpCore::upload_request`]), and
    /// after that first refusal, bodies above its cap go that way at once.
    pub(super) async fn post(
        &self,
        path: &str,
        body: Payload,
        repeat: Repeat,
        session: &mut Option<SessionState>,
    ) -> Result<Reply, ClientError> {
        if !self.above_known_cap(&body) {
            let reply = self
                .post_inline(path, body.clone(), repeat, session)
                .await?;
            if !self.takes_upload(&reply) {
                return Ok(reply);
            }
        }
        let pointer = self.upload_request(&body, session).await?;
        // The refused request never ran, so sending it again is safe.
        self.post_inline(path, pointer, repeat, session).await
    }

    /// [`HttpCore::post`] of the body itself, whatever its size.
    pub(super) async fn post_inline(
        &self,
        path: &str,
        body: Payload,
        repeat: Repeat,
        session: &mut Option<SessionState>,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.endpoint);
        let mut headers = self.server_headers(session.as_ref());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
        // Proxies and HTTP middleware see the trace the body's metadata carries.
        #[cfg(feature = "otel")]
        for (name, value) in crate::trace::current_context() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        let compressed = match self.options.compression_level.filter(|_| self.compress) {
            Some(level) => compress::compress(&body, level).map_err(ClientError::Io)?,
            None => None,
        };
        let body = match compressed {
            Some(compressed) => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(ZSTD));
                Payload::from(compressed)
            }
            None => body,
        };
        let reply = self.send(Method::POST, &url, headers, body, repeat).await?;
        if let Some(session) = session {
            session.capture(&reply.headers);
        }
        Ok(reply)
    }

    /// Ends the sticky session of `token` on the server (`DELETE
    /// {prefix}/__session__`); whether the server knew it makes no
    /// difference to the answer, by design.
    pub(super) async fn delete_session(
        &self,
        token: &str,
        session: Option<&SessionState>,
    ) -> Result<(), ClientError> {
        let url = format!("{}/__session__", self.endpoint);
        let mut headers = self.server_headers(session);
        let value = HeaderValue::from_str(token)
            .map_err(|_| ClientError::Config("the session token is not a valid header".into()))?;
        headers.insert(sticky::SESSION, value);
        let reply = self
            .send(
                Method::DELETE,
                &url,
                headers,
                Payload::default(),
                Repeat::Never,
            )
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(http_error(&reply))
        }
    }

    /// The headers every request to the server carries: the caller's own,
    /// zstd accepted (but from a loopback server), the bearer token, and
    /// the sticky session's.
    fn server_headers(&self, session: Option<&SessionState>) -> HeaderMap {
        let mut headers = self.extra_headers.clone();
        if self.compress {
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(ZSTD));
        }
        if let Some(token) = &self.options.bearer_token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(session) = session {
            session.apply(&mut headers);
        }
        headers
    }

    /// Sends one request, repeating it as the retry policy and `repeat`
    /// allow, and reads the whole response.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Payload,
        repeat: Repeat,
    ) -> Result<Reply, ClientError> {
        let policy = &self.options.retry;
        let mut attempt = 0;
        loop {
            let outcome = self
                .send_once(method.clone(), url, &headers, body.clone())
                .await;
            let more = attempt < policy.retries();
            let retry_after = match &outcome {
                Ok(reply) if more && repeat == Repeat::Safe && is_transient(reply.status) => reply
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
                Err(Failure::Connect(_)) if more => None,
                Err(Failure::Lost(_)) if more && repeat == Repeat::Safe => None,
                Ok(_) | Err(_) => return outcome.map_err(|failure| failure.into_error(url)),
            };
            tokio::time::sleep(policy.delay(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    /// One attempt at a request, within the timeout.
    pub(super) async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Payload,
    ) -> Result<Reply, Failure> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(body.body())
            .map_err(|e| Failure::Invalid(e.to_string()))?;
        request.headers_mut().extend(headers.clone());
        let limit = self.options.max_response_bytes;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Failure::Connect(with_causes(&e))
                } else {
                    Failure::Lost(with_causes(&e))
                }
            })?;
            let (parts, body) = response.into_parts();
            let claimed = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            let body = collect(body, claimed, limit)
                .await
                .map_err(|e| Failure::Lost(format!("reading the response: {e}")))?;
            Ok((parts, body))
        };
        let (parts, body) = match self.options.timeout {
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| Failure::TimedOut(timeout))??,
            None => exchange.await?,
        };
        let body = decode_body(&parts.headers, body, limit).map_err(Failure::Lost)?;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// `error` and its sources, outermost first: hyper's own message alone
/// ("client error (Connect)") hides what went wrong, such as a certificate
/// the client does not trust.
fn with_causes(error: &dyn std::error::Error) -> String {
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

/// Why one attempt at a request failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// No connection could be made: the request never left.
    Connect(String),
    /// The connection failed during the request.
    Lost(String),
    /// The request took longer than the timeout.
    TimedOut(Duration),
    /// The request could not be built.
    Invalid(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(message) => write!(f, "cannot connect: {message}"),
            Failure::Lost(message) | Failure::Invalid(message) => f.write_str(message),
            Failure::TimedOut(after) => write!(f, "no answer within {after:?}"),
        }
    }
}

impl Failure {
    fn into_error(self, url: &str) -> ClientError {
        match self {
            Failure::Connect(message) => ClientError::Connect {
                target: url.to_owned(),
                source: std::io::Error::other(message),
            },
            Failure::Lost(message) => ClientError::Io(std::io::Error::other(message)),
            Failure::TimedOut(after) => ClientError::Timeout(after),
            Failure::Invalid(message) => {
                ClientError::Config(format!("cannot request {url}: {message}"))
            }
        }
    }
}

/// A response body in one buffer. Each piece is copied in as it arrives,
/// while it is still in cache from the socket read, rather than all of
/// them at the end; a body that arrives in one piece is not copied at all.
async fn collect<B>(mut body: B, claimed: Option<usize>, limit: usize) -> Result<Bytes, String>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        let held = first.as_ref().map_or(joined.len(), Bytes::len) + data.len();
        if held > limit {
            return Err(format!("the response exceeds {limit} bytes"));
        }
        if let Some(earlier) = first.take() {
            joined.reserve_exact(reservation(claimed, held, limit));
            joined.extend_from_slice(&earlier);
        } else if joined.is_empty() {
            first = Some(data);
            continue;
        }
        joined.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// What to reserve for a body once `held` bytes of it arrived: the
/// `Content-Length` the server claimed, so that the buffer never moves,
/// but no more than [`EAGER_RESERVE_BYTES`] or 64 times what came so far
/// (address space only until written), so that a false claim costs
/// little. A longer body grows from there by doubling.
fn reservation(claimed: Option<usize>, held: usize, limit: usize) -> usize {
    claimed
        .unwrap_or(held)
        .min(limit)
        .min(EAGER_RESERVE_BYTES.max(held.saturating_mul(64)))
        .max(held)
}

/// The body as sent, decoded from zstd when the response says so.
fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, String> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        ZSTD => {
            let decoder = zstd::stream::read::Decoder::new(body.as_ref())
                .map_err(|e| format!("cannot decompress the response: {e}"))?;
            let mut plain = Vec::new();
            // One byte past the limit tells "at the limit" from "beyond it".
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut plain)
                .map_err(|e| format!("cannot decompress the response: {e}"))?;
            if plain.len() > limit {
                return Err(format!("the response exceeds {limit} bytes"));
            }
            Ok(Bytes::from(plain))
        }
        other => Err(format!("unsupported response Content-Encoding {other:?}")),
    }
}

/// A non-Arrow answer, as an error carrying the status and body text.
pub(super) fn http_error(reply: &Reply) -> ClientError {
    let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]).into_owned();
    ClientError::Http {
        status: reply.status.as_u16(),
        body: text,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use vgirpc_wire::metadata::Metadata;

    use super::*;

    /// A body that arrives in several pieces, one of them a megabyte.
    fn pieces() -> Payload {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
        let column = Float64Array::from_iter_values((0..1 << 17).map(f64::from));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(column)]).unwrap();
        Payload::of_batch(&batch, &Metadata::new()).unwrap()
    }

    #[tokio::test]
    async fn a_body_in_one_piece_is_not_copied() {
        let piece = Bytes::from(vec![7u8; 1000]);
        let body = Payload::from(piece.clone()).body();
        let collected = collect(body, Some(1000), 1 << 20).await.unwrap();
        assert_eq!(collected.as_ptr(), piece.as_ptr());
    }

    #[tokio::test]
    async fn pieces_are_joined_in_order_whatever_the_claim() {
        let payload = pieces();
        let whole = payload.contiguous();
        for claimed in [None, Some(0), Some(10), Some(whole.len()), Some(1 << 30)] {
            let collected = collect(payload.body(), claimed, 1 << 30).await.unwrap();
            assert_eq!(collected, whole, "{claimed:?}");
        }
        let empty = Payload::default().body();
        assert!(collect(empty, None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused() {
        let payload = pieces();
        let len = payload.len();
        let error = collect(payload.body(), Some(len), len - 1)
            .await
            .unwrap_err();
        assert_eq!(error, format!("the response exceeds {} bytes", len - 1));
        assert!(collect(payload.body(), None, len).await.is_ok());
        let one_piece = Payload::from(Bytes::from(vec![0u8; 1001])).body();
        assert!(collect(one_piece, None, 1000).await.is_err());
    }

    #[test]
    fn a_claim_is_reserved_only_as_far_as_what_arrived_makes_it_believable() {
        // An honest claim below the eager size is reserved whole.
        assert_eq!(reservation(Some(1 << 20), 1000, 1 << 30), 1 << 20);
        // A claim of a gigabyte after a kilobyte reserves the eager size.
        assert_eq!(
            reservation(Some(1 << 30), 1000, 1 << 30),
            EAGER_RESERVE_BYTES
        );
        // Past that, 64 times what arrived, and never beyond the limit.
        assert_eq!(reservation(Some(1 << 30), 1 << 20, 1 << 30), 64 << 20);
        assert_eq!(reservation(Some(1 << 30), 1 << 20, 32 << 20), 32 << 20);
        // Never less than what is held.
        assert_eq!(reservation(Some(10), 5000, 1 << 30), 5000);
        assert_eq!(reservation(None, 5000, 1 << 30), 5000);
    }
}
