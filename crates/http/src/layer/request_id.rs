//! `X-Request-ID`: echoed when the client sends one, minted otherwise.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::header::HeaderValue;
use http::{Request, Response};
use tower::{Layer, Service};

use super::{BoxFuture, take};
use crate::body::ResponseBody;

/// Header carrying the request's correlation id.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The request's correlation id, for the handlers.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RequestIdService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = request
            .headers()
            .get(REQUEST_ID)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| {
                HeaderValue::from_str(&vgirpc::new_request_id())
                    .expect("hex is a valid header value")
            });
        request.extensions_mut().insert(RequestId(
            String::from_utf8_lossy(id.as_bytes()).into_owned(),
        ));
        let mut inner = take(&mut self.inner);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            response.headers_mut().insert(REQUEST_ID, id);
            Ok(response)
        })
    }
}
