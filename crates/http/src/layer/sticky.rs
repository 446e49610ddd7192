//! Sticky sessions on the wire: resolve the request's `VGI-Session` token
//! to its session, hold the session while the endpoint runs, then answer
//! with `VGI-Session` / `VGI-Echo-*` / `VGI-Session-Close`; and serve
//! `DELETE {prefix}/__session__`.
//!
//! It sits inside authentication (tokens are bound to the caller) and
//! outside the endpoints, and only exists on sticky servers, so the
//! non-sticky wire is untouched.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};
use vgirpc::wire::ipc::empty_schema;
use vgirpc_token::Identity;

use super::{BoxFuture, take};
use crate::auth::{AuthContext, token_identity};
use crate::blocking;
use crate::body::{self, ResponseBody};
use crate::layer::request_id::RequestId;
use crate::reply::{Reply, error_stream};
use crate::sticky::{
    BoundSession, SESSION, SESSION_ACCEPT, SESSION_CLOSE, SESSION_ENDPOINT, Sticky, StickyCall,
};

#[derive(Debug, Clone)]
pub(crate) struct StickyLayer {
    sticky: Arc<Sticky>,
    /// `{prefix}/__session__`.
    session_path: Arc<str>,
    /// `{prefix}/health`, which never touches sessions.
    health_path: Arc<str>,
}

impl StickyLayer {
    pub(crate) fn new(sticky: Arc<Sticky>, prefix: &str) -> Self {
        Self {
            sticky,
            session_path: format!("{prefix}/{SESSION_ENDPOINT}").into(),
            health_path: format!("{prefix}/health").into(),
        }
    }
}

impl<S> Layer<S> for StickyLayer {
    type Service = StickyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StickyService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StickyService<S> {
    inner: S,
    layer: StickyLayer,
}

impl<S, B> Service<Request<B>> for StickyService<S>
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
        let path = request.uri().path();
        let sticky = self.layer.sticky.clone();
        if request.method() == Method::DELETE && path == &*self.layer.session_path {
            let token = header(&request, SESSION).map(str::to_owned);
            let identity = identity(&request);
            return Box::pin(async move { Ok(delete_session(sticky, token, identity).await) });
        }
        // Only calls (POST) run methods; health checks never touch sessions.
        if request.method() != Method::POST || path == &*self.layer.health_path {
            let mut inner = take(&mut self.inner);
            return Box::pin(async move { inner.call(request).await });
        }
        let accept_opens =
            header(&request, SESSION_ACCEPT).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let token = header(&request, SESSION).map(str::to_owned);
        let identity = identity(&request);
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let mut inner = take(&mut self.inner);
        Box::pin(async move {
            let lease = match token {
                None => None,
                Some(token) => {
                    let resolver = sticky.clone();
                    let who = identity.clone();
                    // Waits while another request holds the session, so not
                    // on the reactor.
                    let resolved = blocking::run(move || resolver.resume(&token, &who)).await;
                    match resolved {
                        Ok(Ok(lease)) => Some(lease),
                        Ok(Err(lost)) => {
                            return Ok(Reply {
                                // Answered as the reference does: 500, sent
                                // as 200 with X-VGI-RPC-Error.
                                status: StatusCode::INTERNAL_SERVER_ERROR,
                                body: error_stream(&empty_schema(), lost.info(), &request_id)
                                    .into(),
                            }
                            .into_response());
                        }
                        Err(err) => {
                            tracing::error!(%err, "resolving a session token panicked");
                            return Ok(body::text(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "internal server error",
                            ));
                        }
                    }
                }
            };
            let call = Arc::new(StickyCall::new(
                sticky.clone(),
                identity,
                accept_opens,
                lease,
            ));
            request.extensions_mut().insert(BoundSession(call.clone()));
            let mut response = inner.call(request).await?;
            // The endpoint has finished with the session: hand it back
            // before the client can send its next request on it.
            let outcome = call.finish();
            let headers = response.headers_mut();
            if let Some(token) = outcome.minted {
                headers.insert(
                    SESSION,
                    HeaderValue::from_str(&token).expect("base64url is a valid header value"),
                );
                // Only the opening response carries them; the client replays
                // them for the rest of the session.
                for (name, value) in sticky.echo_headers() {
                    headers.insert(name, value.clone());
                }
            }
            if outcome.closed {
                headers.insert(SESSION_CLOSE, HeaderValue::from_static("true"));
            }
            Ok(response)
        })
    }
}

fn header<'a, B>(request: &'a Request<B>, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn identity<B>(request: &Request<B>) -> Identity {
    request
        .extensions()
        .get::<Arc<AuthContext>>()
        .map_or(Identity::Anonymous, |auth| token_identity(auth))
}

/// `DELETE {prefix}/__session__`: closes the caller's session, queueing
/// behind a request still using it. 204 when a session was closed, 200 for
/// anything else (no token, a bad or foreign token, no such session), so
/// the endpoint cannot be used to probe which sessions exist.
async fn delete_session(
    sticky: Arc<Sticky>,
    token: Option<String>,
    identity: Identity,
) -> Response<ResponseBody> {
    let closed = match token {
        None => false,
        Some(token) => blocking::run(move || {
            // The close hook runs here too, off the reactor.
            sticky
                .resume(&token, &identity)
                .map(vgirpc_session::Lease::close)
                .is_ok()
        })
        .await
        .unwrap_or(false),
    };
    if !closed {
        return body::response(StatusCode::OK, "text/plain", bytes::Bytes::new());
    }
    let mut response = body::response(StatusCode::NO_CONTENT, "text/plain", bytes::Bytes::new());
    response
        .headers_mut()
        .insert(SESSION_CLOSE, HeaderValue::from_static("true"));
    response
}
