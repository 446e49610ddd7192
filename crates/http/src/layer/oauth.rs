//! The browser login flow (see [`crate::oauth`]): its routes under
//! `{prefix}/_oauth/`, answered before authentication, and the `401`s of
//! browsers turned into redirects to the login page.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{ALLOW, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use tower::{Layer, Service};

use super::{BoxFuture, take};
use crate::body::{self, BoxError, ResponseBody};
use crate::oauth::{Flow, Route};

#[derive(Debug, Clone)]
pub(crate) struct OAuthLayer(Arc<Flow>);

impl OAuthLayer {
    pub(crate) fn new(flow: Arc<Flow>) -> Self {
        Self(flow)
    }
}

impl<S> Layer<S> for OAuthLayer {
    type Service = OAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OAuthService {
            inner,
            flow: Arc::clone(&self.0),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OAuthService<S> {
    inner: S,
    flow: Arc<Flow>,
}

impl<S, B> Service<Request<B>> for OAuthService<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let flow = Arc::clone(&self.flow);
        let (parts, body) = request.into_parts();
        let answer = |response| -> BoxFuture { Box::pin(async move { Ok(response) }) };
        match (flow.route(parts.uri.path()), &parts.method) {
            (Some(Route::Callback), &Method::GET) => {
                Box::pin(async move { Ok(flow.callback(parts).await) })
            }
            (Some(Route::Logout), &Method::GET) => answer(flow.logout()),
            (Some(Route::Token), &Method::OPTIONS) => answer(flow.preflight(&parts)),
            (Some(Route::Token), &Method::POST) => {
                Box::pin(async move { Ok(flow.token_proxy(parts, body).await) })
            }
            (Some(Route::Token), _) => answer(not_allowed("OPTIONS, POST", &body)),
            (Some(Route::Callback | Route::Logout), &Method::OPTIONS) => answer(allowed()),
            (Some(Route::Callback | Route::Logout), _) => {
                answer(not_allowed("GET, OPTIONS", &body))
            }
            (Some(Route::Metadata), &Method::GET) => {
                let mut inner = take(&mut self.inner);
                Box::pin(async move {
                    let response = inner.call(Request::from_parts(parts, body)).await?;
                    Ok(flow.advertise(response))
                })
            }
            _ => {
                if parts.method == Method::GET
                    && let Some(response) = flow.already_signed_in(&parts)
                {
                    return answer(response);
                }
                let login = Flow::wants_login(&parts).then(|| parts.uri.clone());
                let mut inner = take(&mut self.inner);
                Box::pin(async move {
                    let response = inner.call(Request::from_parts(parts, body)).await?;
                    if let Some(uri) = login
                        && response.status() == StatusCode::UNAUTHORIZED
                        && let Some(mut redirect) = flow.login(&uri).await
                    {
                        // The challenge stays, as when the reference turns
                        // the same response into the redirect.
                        if let Some(challenge) = response.headers().get(WWW_AUTHENTICATE) {
                            redirect
                                .headers_mut()
                                .insert(WWW_AUTHENTICATE, challenge.clone());
                        }
                        return Ok(redirect);
                    }
                    Ok(response)
                })
            }
        }
    }
}

/// `405` naming the methods a route takes, in the reference's words; the
/// connection closes when the request's body was left unread.
fn not_allowed<B: Body>(allowed: &'static str, body: &B) -> Response<ResponseBody> {
    let mut response = body::response(
        StatusCode::METHOD_NOT_ALLOWED,
        "application/json",
        r#"{"title": "405 Method Not Allowed"}"#,
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    if body.is_end_stream() {
        response
    } else {
        body::closing(response)
    }
}

/// What a route of `GET` alone answers `OPTIONS` with, as the reference's
/// framework does.
fn allowed() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::default());
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, OPTIONS"));
    response
}
