//! The innermost tower service: routes a request to its endpoint and runs
//! the endpoint on a blocking thread, so that methods, storage calls and
//! encoding never stall the reactor.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::Service;
use vgirpc::wire::describe::MethodType;
use vgirpc::wire::ipc::empty_schema;
use vgirpc::wire::log::ErrorInfo;
use vgirpc::wire::metadata;

use crate::RemoteAddr;
use crate::auth::AuthContext;
use crate::blocking::InPlaceCalls;
use crate::body::{self, ARROW_STREAM, ResponseBody};
use crate::layer::BoxFuture;
use crate::layer::request_id::RequestId;
use crate::pages::{Pages, Rendered};
use crate::reply::{Reply, error_stream};
use crate::rpc::{Caller, Rpc};
use crate::sticky::BoundSession;

/// Where a path leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Health,
    Capabilities,
    UploadUrls,
    Unary(&'a str),
    Init(&'a str),
    Exchange(&'a str),
    NotFound,
}

fn route<'a>(prefix: &str, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
        return Route::NotFound;
    };
    let mut segments = rest.split('/');
    let (Some(method), next, None) = (segments.next(), segments.next(), segments.next()) else {
        return Route::NotFound;
    };
    match (method, next) {
        ("", _) => Route::NotFound,
        ("health", None) => Route::Health,
        ("__capabilities__", None) => Route::Capabilities,
        ("__upload_url__", Some("init")) => Route::UploadUrls,
        (method, None) => Route::Unary(method),
        (method, Some("init")) => Route::Init(method),
        (method, Some("exchange")) => Route::Exchange(method),
        _ => Route::NotFound,
    }
}

/// The vgi-rpc endpoints of one server.
#[derive(Clone)]
pub(crate) struct Endpoints {
    rpc: Arc<Rpc>,
    prefix: Arc<str>,
    /// `GET {prefix}/health`, rendered once.
    health: Bytes,
    pages: Arc<Rendered>,
    in_place: InPlaceCalls,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Endpoints {
    pub(crate) fn new(rpc: Rpc, prefix: &str, pages: &Pages) -> Self {
        let health = serde_json::json!({
            "status": "ok",
            "server_id": vgirpc::server_id(),
            "protocol": rpc.server.service().protocol_name(),
        });
        let pages = Arc::new(Rendered::new(&rpc.server, prefix, pages));
        Self {
            rpc: Arc::new(rpc),
            prefix: prefix.into(),
            health: Bytes::from(health.to_string()),
            pages,
            in_place: InPlaceCalls::default(),
        }
    }

    /// Answers what needs no method call; for calls, says which to make.
    fn prepare(&self, request: &Request<Bytes>) -> Prepared {
        let method = request.method();
        let caller = || Caller {
            auth: request
                .extensions()
                .get::<Arc<AuthContext>>()
                .cloned()
                .unwrap_or_default(),
            remote_addr: request
                .extensions()
                .get::<RemoteAddr>()
                .map_or_else(String::new, |addr| addr.0.to_string()),
            request_id: request
                .extensions()
                .get::<RequestId>()
                .map_or_else(vgirpc::new_request_id, |id| id.0.clone()),
            session: request.extensions().get::<BoundSession>().cloned(),
            trace_headers: [metadata::TRACEPARENT, metadata::TRACESTATE]
                .into_iter()
                .filter_map(|name| {
                    let value = request.headers().get(name)?.to_str().ok()?;
                    Some((name, value.to_owned()))
                })
                .collect(),
        };
        #[cfg(feature = "prometheus")]
        if let Some(metrics) = self
            .rpc
            .metrics
            .as_ref()
            .filter(|m| request.uri().path() == m.path())
        {
            return Prepared::Answer(if method == Method::GET {
                body::response(
                    StatusCode::OK,
                    crate::metrics::CONTENT_TYPE,
                    metrics.render(),
                )
            } else {
                not_allowed("GET")
            });
        }
        if let Some(page) = self.pages.page(method, request.uri().path()) {
            return Prepared::Answer(page);
        }
        let route = route(&self.prefix, request.uri().path());
        let (kind, name) = match route {
            Route::NotFound => {
                return Prepared::Answer(
                    self.pages
                        .not_found(method)
                        .unwrap_or_else(|| body::text(StatusCode::NOT_FOUND, "Not Found")),
                );
            }
            Route::Health if method == Method::GET => {
                return Prepared::Answer(body::response(
                    StatusCode::OK,
                    "application/json",
                    self.health.clone(),
                ));
            }
            Route::Health | Route::Capabilities if method == Method::OPTIONS => {
                return Prepared::Answer(body::response(
                    StatusCode::OK,
                    "text/plain",
                    Bytes::new(),
                ));
            }
            Route::Health => return Prepared::Answer(not_allowed("GET, OPTIONS")),
            Route::Capabilities => return Prepared::Answer(not_allowed("OPTIONS")),
            Route::UploadUrls if self.rpc.upload_urls.is_none() => {
                return Prepared::Answer(body::text(StatusCode::NOT_FOUND, "Not Found"));
            }
            _ if method != Method::POST => return Prepared::Answer(not_allowed("POST")),
            Route::UploadUrls => (CallKind::UploadUrls, String::new()),
            Route::Unary(name) => (CallKind::Unary, name.to_owned()),
            Route::Init(name) => (CallKind::Init, name.to_owned()),
            Route::Exchange(name) => (CallKind::Exchange, name.to_owned()),
        };
        let caller = caller();
        let refuse = |status: StatusCode, error_type: &str, message: String| {
            let info = ErrorInfo::new(error_type, message);
            Reply {
                status,
                body: error_stream(&empty_schema(), &info, &caller.request_id).into(),
            }
            .into_response()
        };
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if content_type != ARROW_STREAM {
            return Prepared::Answer(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "TypeError",
                format!(
                    "Expected Content-Type: '{ARROW_STREAM}', got '{content_type}'. All vgi-rpc \
                     HTTP requests must use Content-Type: {ARROW_STREAM}"
                ),
            ));
        }
        if kind != CallKind::UploadUrls {
            let mismatch = match (kind, self.rpc.server.method_type(&name)) {
                (_, None) => {
                    let answer = self.rpc.server.unknown_method(&name, &caller.request_id);
                    return Prepared::Answer(Reply::of_answer(&answer).into_response());
                }
                (CallKind::Unary, Some(MethodType::Stream)) => Some(format!(
                    "Stream method '{name}' requires /init and /exchange endpoints"
                )),
                (CallKind::Init, Some(MethodType::Unary)) => {
                    Some(format!("Method '{name}' is not a stream"))
                }
                (CallKind::Exchange, Some(MethodType::Unary)) => {
                    Some(format!("Method '{name}' does not support /exchange"))
                }
                _ => None,
            };
            if let Some(message) = mismatch {
                return Prepared::Answer(refuse(StatusCode::BAD_REQUEST, "TypeError", message));
            }
        }
        Prepared::Call(Call { kind, name, caller })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Unary,
    Init,
    Exchange,
    UploadUrls,
}

/// What a request needs: an answer right away, or a method call.
enum Prepared {
    Answer(Response<ResponseBody>),
    Call(Call),
}

/// A method call, run in place or as blocking work (see [`InPlaceCalls`]).
struct Call {
    kind: CallKind,
    name: String,
    caller: Caller,
}

impl Service<Request<Bytes>> for Endpoints {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let call = match self.prepare(&request) {
            Prepared::Call(call) => call,
            Prepared::Answer(response) => return Box::pin(async move { Ok(response) }),
        };
        let rpc = self.rpc.clone();
        let in_place = self.in_place.clone();
        let body = request.into_body();
        #[cfg(feature = "prometheus")]
        let in_flight = self.rpc.metrics.as_ref().map(|m| m.call_started());
        Box::pin(async move {
            #[cfg(feature = "prometheus")]
            let _in_flight = in_flight;
            let Call { kind, name, caller } = call;
            let reply = in_place
                .run(move || match kind {
                    CallKind::Unary => rpc.unary(&name, &body, &caller),
                    CallKind::Init => rpc.init(&name, &body, &caller),
                    CallKind::Exchange => rpc.exchange(&name, &body, &caller),
                    CallKind::UploadUrls => rpc.upload_urls(&body, &caller),
                })
                .await;
            Ok(match reply {
                Ok(reply) => reply.into_response(),
                Err(err) => {
                    // A panicking method must not take the connection down
                    // without an answer.
                    tracing::error!(%err, "a request handler panicked");
                    body::text(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
                }
            })
        })
    }
}

fn not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut response = body::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_under_the_prefix() {
        assert_eq!(route("", "/echo"), Route::Unary("echo"));
        assert_eq!(route("", "/produce/init"), Route::Init("produce"));
        assert_eq!(route("", "/produce/exchange"), Route::Exchange("produce"));
        assert_eq!(route("", "/health"), Route::Health);
        assert_eq!(route("", "/__upload_url__/init"), Route::UploadUrls);
        assert_eq!(route("/vgi", "/vgi/echo"), Route::Unary("echo"));
        assert_eq!(route("/vgi", "/vgi/__capabilities__"), Route::Capabilities);
        for path in ["/", "/a/b/c", "/vgi", "/echo/other", "/vgiecho"] {
            let prefix = if path.starts_with("/vgi") { "/vgi" } else { "" };
            assert_eq!(route(prefix, path), Route::NotFound, "{path}");
        }
        assert_eq!(route("/vgi", "/echo"), Route::NotFound);
    }
}
