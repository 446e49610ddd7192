//! The test-only drain switch of the reference's conformance servers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};
use vgirpc_http::{DrainHandle, ResponseBody};

/// Path of the test-only drain switch.
const TEST_DRAIN_PATH: &str = "/__test_drain__";

/// `POST /__test_drain__` starts draining, `DELETE` stops it (both 204), so
/// the suite's drain test can run without signalling the worker and leave
/// it usable; the reference's conformance server has the same switch. A
/// server without sticky sessions accepts both and does nothing.
#[derive(Debug, Clone)]
pub(super) struct TestDrainLayer(pub(super) Option<DrainHandle>);

impl<S> Layer<S> for TestDrainLayer {
    type Service = TestDrain<S>;

    fn layer(&self, inner: S) -> TestDrain<S> {
        TestDrain {
            inner,
            drain: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct TestDrain<S> {
    inner: S,
    drain: Option<DrainHandle>,
}

pub(super) type Answer =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl<S, B> Service<Request<B>> for TestDrain<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Answer {
        if request.uri().path() != TEST_DRAIN_PATH {
            return Box::pin(self.inner.call(request));
        }
        let status = match (request.method(), &self.drain) {
            (&Method::POST, Some(drain)) => {
                drain.drain();
                StatusCode::NO_CONTENT
            }
            (&Method::DELETE, Some(drain)) => {
                drain.cancel_drain();
                StatusCode::NO_CONTENT
            }
            (&Method::POST | &Method::DELETE, None) => StatusCode::NO_CONTENT,
            _ => StatusCode::METHOD_NOT_ALLOWED,
        };
        let mut response = Response::new(ResponseBody::full(Vec::new()));
        *response.status_mut() = status;
        Box::pin(std::future::ready(Ok(response)))
    }
}
