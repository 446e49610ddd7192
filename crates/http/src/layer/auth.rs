//! Authentication before anything else is done with a request: a refused
//! request is answered `401` with a plain-text body, unread.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use tower::{Layer, Service};

use super::{BoxFuture, take};
use vgirpc::Server;

use crate::RemoteAddr;
use crate::auth::{AuthContext, Authenticate};
use crate::body::{self, ResponseBody};

#[derive(Clone)]
pub(crate) struct AuthLayer {
    authenticate: Option<Arc<dyn Authenticate>>,
    /// Paths anyone may reach (the health check).
    exempt: Arc<[String]>,
    /// Told of each refusal, for its hooks' metrics.
    server: Server,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("enabled", &self.authenticate.is_some())
            .field("exempt", &self.exempt)
            .finish()
    }
}

impl AuthLayer {
    pub(crate) fn new(
        authenticate: Option<Arc<dyn Authenticate>>,
        exempt: Vec<String>,
        server: Server,
    ) -> Self {
        Self {
            authenticate,
            exempt: exempt.into(),
            server,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body + Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        // Capability probes (OPTIONS) and the health check must work for
        // load balancers and clients that have not authenticated yet.
        let exempt = parts.method == Method::OPTIONS
            || self.layer.exempt.iter().any(|p| parts.uri.path() == p);
        let context = match &self.layer.authenticate {
            Some(authenticate) if !exempt => authenticate.authenticate(&parts),
            _ => Ok(AuthContext::anonymous()),
        };
        match context {
            Ok(context) => {
                // Shared from here to the method and its access record.
                parts.extensions.insert(Arc::new(context));
                let mut inner = take(&mut self.inner);
                Box::pin(async move { inner.call(Request::from_parts(parts, body)).await })
            }
            Err(rejection) => {
                tracing::warn!(path = parts.uri.path(), reason = %rejection.message, "authentication failed");
                let error_type = if rejection.forbidden {
                    "PermissionError"
                } else {
                    "ValueError"
                };
                let remote = parts
                    .extensions
                    .get::<RemoteAddr>()
                    .map(|RemoteAddr(addr)| addr.to_string());
                self.layer
                    .server
                    .report_auth_failure(error_type, remote.as_deref());
                let mut response = body::text(StatusCode::UNAUTHORIZED, rejection.message);
                if !body.is_end_stream() {
                    response = body::closing(response);
                }
                if let Some(challenge) = rejection
                    .challenge
                    .and_then(|c| HeaderValue::from_str(&c).ok())
                {
                    response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
                }
                Box::pin(async move { Ok(response) })
            }
        }
    }
}
