//! Reading the request body, within limits: a body over the advertised
//! `max_request_bytes` is refused with `413` (the client then uploads it and
//! sends a pointer batch instead), before it is read when the length is
//! declared, as soon as it overflows otherwise.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Layer, Service};

use super::{BoxFuture, take};
use crate::body::{self, ResponseBody};

/// The body limit where no `max_request_bytes` is configured, or on paths it
/// does not cover: a bound on memory, not a protocol limit.
pub(crate) const DEFAULT_BODY_LIMIT: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub(crate) struct BodyLimitLayer {
    max_request_bytes: Option<u64>,
    /// Path prefixes whose bodies are not client data (upload-URL requests,
    /// health checks) and so are not held to `max_request_bytes`.
    exempt: Arc<[String]>,
}

impl BodyLimitLayer {
    pub(crate) fn new(max_request_bytes: Option<u64>, exempt: Vec<String>) -> Self {
        Self {
            max_request_bytes,
            exempt: exempt.into(),
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
    B::Error: std::error::Error + Send + Sync + 'static,
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
            body::text(StatusCode::PAYLOAD_TOO_LARGE, message)
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
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) if err.is::<LengthLimitError>() => return Ok(too_large(None)),
                Err(err) => {
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
