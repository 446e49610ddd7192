//! The token endpoint proxy: a single-page app's grants forwarded to the
//! authorization server with the client secret, its CORS, and the
//! metadata document that advertises it.

use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::Value as Json;

use super::flow::Flow;
use super::idp;
use super::urls::{cors_origin, first, form_decode};
use crate::body::{self, BoxError, ResponseBody};
use crate::config::DEFAULT_BODY_READ_TIMEOUT;

/// The largest token request the proxy reads: a code, a verifier, a
/// refresh token and a redirect URI take well under a kilobyte.
const MAX_TOKEN_REQUEST_BYTES: usize = 64 << 10;

/// The grants the proxy forwards; anything else (client credentials
/// above all) would let anyone use the server's secret.
const FORWARDED_GRANTS: [&str; 2] = ["authorization_code", "refresh_token"];

/// The request fields forwarded besides the grant type and client.
const FORWARDED_FIELDS: [&str; 5] = [
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "scope",
];

const FORM: &str = "application/x-www-form-urlencoded";

impl Flow {
    /// The metadata document with the proxy's `token_endpoint` added.
    pub(crate) fn advertise(&self, response: Response<ResponseBody>) -> Response<ResponseBody> {
        let Some(endpoint) = &self.advertised_token_endpoint else {
            return response;
        };
        if response.status() != StatusCode::OK {
            return response;
        }
        let (mut parts, mut body) = response.into_parts();
        let Some(bytes) = body.take_full() else {
            return Response::from_parts(parts, body);
        };
        let Ok(Json::Object(mut document)) = serde_json::from_slice::<Json>(&bytes) else {
            return Response::from_parts(parts, ResponseBody::full(bytes));
        };
        document.insert("token_endpoint".into(), Json::from(endpoint.clone()));
        parts.headers.remove(CONTENT_LENGTH);
        let document = Json::Object(document).to_string();
        Response::from_parts(parts, ResponseBody::full(document))
    }

    /// `OPTIONS {prefix}/_oauth/token`: the CORS preflight, answered here
    /// whether or not the server has CORS of its own.
    pub(crate) fn preflight(&self, request: &Parts) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("7200"));
        self.cors(&request.headers, response)
    }

    /// `POST {prefix}/_oauth/token`: forwards an `authorization_code` or
    /// `refresh_token` grant of this server's client to the authorization
    /// server with the client secret, and passes its answer back as it
    /// came.
    pub(crate) async fn token_proxy<B>(
        self: Arc<Self>,
        request: Parts,
        body: B,
    ) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let response = self.forward(&request, body).await;
        self.cors(&request.headers, response)
    }

    async fn forward<B>(&self, request: &Parts, body: B) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let media_type = request
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media_type.as_deref() != Some(FORM) {
            let unread = !body.is_end_stream();
            let response = json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "Content-Type must be application/x-www-form-urlencoded",
            );
            return if unread {
                body::closing(response)
            } else {
                response
            };
        }
        let read = tokio::time::timeout(
            DEFAULT_BODY_READ_TIMEOUT,
            Limited::new(body, MAX_TOKEN_REQUEST_BYTES).collect(),
        )
        .await;
        let Ok(Ok(collected)) = read else {
            return body::closing(json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Could not read request body",
            ));
        };
        let form = form_decode(&String::from_utf8_lossy(&collected.to_bytes()));
        let grant_type = first(&form, "grant_type").unwrap_or_default();
        if !FORWARDED_GRANTS.contains(&grant_type) {
            return json_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be one of ['authorization_code', 'refresh_token']",
            );
        }
        if first(&form, "client_id").is_some_and(|id| id != self.client_id) {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "client_id does not match the configured client",
            );
        }
        let Some(endpoints) = self.discovery.endpoints().await else {
            return json_error(
                StatusCode::BAD_GATEWAY,
                "server_error",
                "Authorization server discovery failed",
            );
        };
        let mut upstream = vec![
            ("grant_type", grant_type.to_owned()),
            ("client_id", self.client_id.clone()),
        ];
        if let Some(secret) = &self.client_secret {
            upstream.push(("client_secret", secret.clone()));
        }
        for field in FORWARDED_FIELDS {
            if let Some(value) = first(&form, field) {
                upstream.push((field, value.to_owned()));
            }
        }
        match idp::post_form(&endpoints.token, upstream).await {
            Ok(reply) => {
                let content_type = reply
                    .headers
                    .get(CONTENT_TYPE)
                    .cloned()
                    .unwrap_or_else(|| HeaderValue::from_static("application/json"));
                let mut response = Response::new(ResponseBody::full(reply.body));
                *response.status_mut() = reply.status;
                response.headers_mut().insert(CONTENT_TYPE, content_type);
                response
            }
            Err(err) => {
                tracing::warn!(%err, "OAuth token proxy: the token endpoint failed");
                json_error(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    &format!("Upstream token endpoint failed: {err}"),
                )
            }
        }
    }

    /// `response` with the CORS headers a script of the request's origin
    /// needs, when that origin may call the token endpoint.
    fn cors(
        &self,
        request: &HeaderMap,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        let origin = request
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .and_then(|origin| cors_origin(origin, &self.return_origins))
            .and_then(|origin| HeaderValue::from_str(&origin).ok());
        if let Some(origin) = origin {
            let headers = response.headers_mut();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(VARY, HeaderValue::from_static("Origin"));
        }
        response
    }
}

/// An OAuth error answer (RFC 6749 §5.2), laid out as the reference's
/// `json.dumps` lays it out.
fn json_error(status: StatusCode, error: &str, description: &str) -> Response<ResponseBody> {
    let string = |text: &str| Json::from(text).to_string();
    let body = format!(
        "{{\"error\": {}, \"error_description\": {}}}",
        string(error),
        string(description)
    );
    body::response(status, "application/json", body)
}
