//! Capability headers (`VGI-Max-Request-Bytes`, `VGI-Externalization-Enabled`...)
//! on every response, so clients learn the server's limits from any answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use tower::{Layer, Service};

use super::{BoxFuture, take};
use crate::body::ResponseBody;

/// How long clients may cache capabilities learnt from an `OPTIONS` probe.
const OPTIONS_CACHE: &str = "public, max-age=300";

#[derive(Debug, Clone)]
pub(crate) struct CapabilitiesLayer {
    headers: Arc<HeaderMap>,
}

impl CapabilitiesLayer {
    pub(crate) fn new(headers: HeaderMap) -> Self {
        Self {
            headers: Arc::new(headers),
        }
    }
}

impl<S> Layer<S> for CapabilitiesLayer {
    type Service = CapabilitiesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CapabilitiesService {
            inner,
            headers: self.headers.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CapabilitiesService<S> {
    inner: S,
    headers: Arc<HeaderMap>,
}

impl<S, B> Service<Request<B>> for CapabilitiesService<S>
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let is_options = request.method() == Method::OPTIONS;
        let headers = self.headers.clone();
        let mut inner = take(&mut self.inner);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            for (name, value) in headers.iter() {
                response.headers_mut().insert(name, value.clone());
            }
            if is_options {
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static(OPTIONS_CACHE));
            }
            Ok(response)
        })
    }
}
