//! Cross-origin access for browser apps: which origins may call the server,
//! and which response headers their scripts may read.

use std::time::Duration;

use http::Method;
use http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::error::HttpError;
use crate::layer::request_id::REQUEST_ID;
use crate::reply::RPC_ERROR;

/// How long a browser may cache a preflight answer unless told otherwise:
/// two hours, as the reference's `cors_max_age`.
pub const DEFAULT_CORS_MAX_AGE: Duration = Duration::from_secs(7200);

/// Which origins browsers may call the server from
/// ([`HttpConfig::with_cors`](crate::HttpConfig::with_cors)).
///
/// Preflight `OPTIONS` requests are answered before authentication; every
/// response carries `Access-Control-Allow-Origin` for an allowed origin and
/// exposes the headers a vgi-rpc client reads (capabilities, request id,
/// `WWW-Authenticate`, the error flag and, on sticky servers, the session
/// headers).
#[derive(Debug, Clone)]
pub struct CorsConfig {
    origins: Origins,
    max_age: Option<Duration>,
    credentials: bool,
}

#[derive(Debug, Clone)]
enum Origins {
    Any,
    List(Vec<String>),
}

impl CorsConfig {
    /// Any origin (`Access-Control-Allow-Origin: *`), without credentials.
    pub fn any_origin() -> Self {
        Self::with(Origins::Any)
    }

    /// Only these origins (`https://app.example.com`), each echoed back to
    /// the browser that sent it.
    pub fn origins(origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with(Origins::List(origins.into_iter().map(Into::into).collect()))
    }

    fn with(origins: Origins) -> Self {
        Self {
            origins,
            max_age: Some(DEFAULT_CORS_MAX_AGE),
            credentials: false,
        }
    }

    /// How long browsers may cache a preflight answer; `None` leaves
    /// `Access-Control-Max-Age` out.
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// Lets browsers send cookies and credentials cross-origin. Only with a
    /// list of origins: browsers refuse credentials with `*`, and
    /// [`HttpServer::new`](crate::HttpServer::new) refuses the pair.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// The layer, exposing `capability_headers` besides the headers every
    /// server sends.
    pub(crate) fn layer(
        &self,
        capability_headers: impl IntoIterator<Item = HeaderName>,
    ) -> Result<CorsLayer, HttpError> {
        let origin = match &self.origins {
            Origins::Any if self.credentials => {
                return Err(HttpError::Config(
                    "CORS credentials need a list of origins: browsers refuse them with `*`".into(),
                ));
            }
            Origins::Any => AllowOrigin::any(),
            Origins::List(list) => {
                let values = list
                    .iter()
                    .map(|origin| {
                        HeaderValue::from_str(origin).map_err(|_| {
                            HttpError::Config(format!("invalid CORS origin {origin:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                AllowOrigin::list(values)
            }
        };
        let mut exposed = vec![
            WWW_AUTHENTICATE,
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static(RPC_ERROR),
            HeaderName::from_static("x-vgi-content-encoding"),
        ];
        exposed.extend(capability_headers);
        let mut layer = CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(exposed)
            .allow_credentials(self.credentials);
        if let Some(max_age) = self.max_age {
            layer = layer.max_age(max_age);
        }
        Ok(layer)
    }
}
