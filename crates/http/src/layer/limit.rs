//! Reading the request body, within limits: a body over the advertised
//! `max_request_bytes` is refused with `413` (the client then uploads it and
//! sends a pointer batch instead), before it is read when the length is
//! declared, as soon as it overflows otherwise. A body that stops arriving
//! for the body read timeout is answered `408` and its connection closed.
//!
//! The body is held once: a body that arrives in one piece is passed on as
//! it is, a longer one is copied piece by piece into one buffer that grows
//! as the bytes come ([`GrowingBuffer`]), never reserved whole on the
//! strength of its `Content-Length`.

use std::collections::TryReserveError;
use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tower::{Layer, Service};

use super::{BoxFuture, take};
use crate::body::{self, ResponseBody};
use crate::buffer::GrowingBuffer;

/// The body limit where no `max_request_bytes` is configured, or on paths it
/// does not cover: a bound on memory, not a protocol limit.
pub(crate) const DEFAULT_BODY_LIMIT: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub(crate) struct BodyLimitLayer {
    max_request_bytes: Option<u64>,
    /// Path prefixes whose bodies are not client data (upload-URL requests,
    /// health checks) and so are not held to `max_request_bytes`.
    exempt: Arc<[String]>,
    /// The longest wait for the next piece of a body.
    read_timeout: Option<Duration>,
}

impl BodyLimitLayer {
    pub(crate) fn new(
        max_request_bytes: Option<u64>,
        exempt: Vec<String>,
        read_timeout: Option<Duration>,
    ) -> Self {
        Self {
            max_request_bytes,
            exempt: exempt.into(),
            read_timeout,
        }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BodyLimitService<S> {
    inner: S,
    layer: BodyLimitLayer,
}

impl<S, B> Service<Request<B>> for BodyLimitService<S>
where
    S: Service<Request<Bytes>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display + Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        let capped = !self
            .layer
            .exempt
            .iter()
            .any(|p| path.starts_with(p.as_str()));
        let cap = self.layer.max_request_bytes.filter(|_| capped);
        let limit = cap.unwrap_or(DEFAULT_BODY_LIMIT);
        let too_large = move |size: Option<u64>| {
            let size = size.map_or_else(
                || "more than the limit".to_owned(),
                |n| format!("{n} bytes"),
            );
            let message = match cap {
                Some(cap) => format!(
                    "Request body of {size} exceeds the server's advertised \
                     max_request_bytes={cap}. Use the upload-URL flow (__upload_url__/init) \
                     to externalize large inputs."
                ),
                None => {
                    format!("Request body of {size} exceeds the server's limit of {limit} bytes.")
                }
            };
            body::closing(body::text(StatusCode::PAYLOAD_TOO_LARGE, message))
        };
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(declared) = declared.filter(|n| *n > limit) {
            return Box::pin(async move { Ok(too_large(Some(declared))) });
        }
        let mut inner = take(&mut self.inner);
        let read_timeout = self.layer.read_timeout;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let claimed = declared.and_then(|n| usize::try_from(n).ok());
            let bytes = match collect(body, limit, claimed, read_timeout).await {
                Ok(bytes) => bytes,
                Err(ReadFailure::TooLarge) => return Ok(too_large(None)),
                Err(ReadFailure::Stalled(waited)) => {
                    tracing::debug!(?waited, "a request body stopped arriving");
                    return Ok(body::closing(body::text(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "No request body bytes arrived for {} s; the request was abandoned.",
                            waited.as_secs_f64()
                        ),
                    )));
                }
                Err(ReadFailure::NoMemory) => {
                    tracing::warn!(claimed, "no memory for a request body");
                    return Ok(body::closing(body::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The server cannot hold this request body now.",
                    )));
                }
                Err(ReadFailure::Body(err)) => {
                    // Usually the client hung up mid-body; it may not read this.
                    tracing::debug!(%err, "could not read a request body");
                    return Ok(body::text(
                        StatusCode::BAD_REQUEST,
                        format!("Could not read the request body: {err}"),
                    ));
                }
            };
            inner.call(Request::from_parts(parts, bytes)).await
        })
    }
}

/// Why a body could not be read.
enum ReadFailure<E> {
    TooLarge,
    /// No bytes came for this long.
    Stalled(Duration),
    /// The memory for the body could not be had.
    NoMemory,
    Body(E),
}

impl<E> From<TryReserveError> for ReadFailure<E> {
    fn from(_: TryReserveError) -> Self {
        ReadFailure::NoMemory
    }
}

/// Reads the whole of `body`, at most `limit` bytes, waiting at most
/// `read_timeout` for each piece; `claimed` is the declared length, which
/// guides how the buffer grows.
async fn collect<B: Body<Data = Bytes>>(
    body: B,
    limit: usize,
    claimed: Option<usize>,
    read_timeout: Option<Duration>,
) -> Result<Bytes, ReadFailure<B::Error>> {
    let mut body = pin!(body);
    // The first piece is kept as it came: a body of one piece (nearly
    // every call) is never copied.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<GrowingBuffer> = None;
    let mut held = 0usize;
    loop {
        let next = body.frame();
        let frame = match read_timeout {
            Some(timeout) => tokio::time::timeout(timeout, next)
                .await
                .map_err(|_| ReadFailure::Stalled(timeout))?,
            None => next.await,
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.map_err(ReadFailure::Body)?.into_data() else {
            // Trailers carry nothing vgi-rpc reads.
            continue;
        };
        held = held
            .checked_add(data.len())
            .filter(|&n| n <= limit)
            .ok_or(ReadFailure::TooLarge)?;
        match (&mut joined, first.take()) {
            (Some(buffer), _) => buffer.extend_from_slice(&data)?,
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let mut buffer = GrowingBuffer::new(claimed);
                buffer.extend_from_slice(&earlier)?;
                buffer.extend_from_slice(&data)?;
                joined = Some(buffer);
            }
        }
    }
    Ok(match joined {
        Some(buffer) => buffer.into_bytes(),
        None => first.unwrap_or_default(),
    })
}
