//! What the login routes answer, and how a refused browser is sent to log
//! in.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCEPT, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_LENGTH,
    CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, ORIGIN, SET_COOKIE, VARY,
};
use http::request::Parts;
use http::{Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::Value as Json;
use vgirpc_token::{TOKEN_KEY_ENV, unix_now};

use super::idp::{self, CodeExchange, Discovery};
use super::page::error_page;
use super::session::{self, MAX_AGE_SECS, Session, SessionKey};
use super::urls::{
    cookie, cookie_safe, cors_origin, first, form_decode, form_encode, quote, set_cookie,
    validate_original_url, validate_return_to,
};
use super::{AUTH_COOKIE, OAuthPkce, SESSION_COOKIE};
use crate::auth::{OAuthResourceMetadata, well_known_paths};
use crate::body::{self, BoxError, ResponseBody};
use crate::config::DEFAULT_BODY_READ_TIMEOUT;
use crate::error::HttpError;

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

const NO_CACHE: &str = "no-cache, no-store, must-revalidate";
const FORM: &str = "application/x-www-form-urlencoded";

/// The routes of the flow under the server's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Callback,
    Logout,
    Token,
    /// The metadata document, which gains the proxy's `token_endpoint`.
    Metadata,
}

/// One server's login flow.
#[derive(Debug)]
pub(crate) struct Flow {
    prefix: String,
    /// The prefix, or `/` when it is empty: where logouts and failed
    /// logins lead, and the path of the auth cookie.
    home: String,
    /// Where the session cookie is sent back: the flow's own routes only.
    session_path: String,
    callback: String,
    logout: String,
    token: String,
    metadata_paths: Vec<String>,
    /// `{origin}{prefix}/_oauth/token`, advertised when there is a client
    /// secret for the proxy to add.
    advertised_token_endpoint: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    use_id_token: bool,
    scope: String,
    redirect_uri: String,
    /// Cookies are `Secure` when the resource is served over https.
    secure: bool,
    key: SessionKey,
    return_origins: Vec<String>,
    discovery: Arc<Discovery>,
}

impl Flow {
    pub(crate) fn new(
        pkce: &OAuthPkce,
        metadata: &OAuthResourceMetadata,
        prefix: &str,
    ) -> Result<Self, HttpError> {
        let invalid = |what: String| HttpError::Config(format!("OAuth PKCE: {what}"));
        let client_id = metadata
            .client_id
            .clone()
            .ok_or_else(|| invalid("the resource metadata has no client_id".into()))?;
        let issuer = metadata
            .authorization_servers
            .first()
            .ok_or_else(|| invalid("the resource metadata names no authorization server".into()))?;
        let resource: Uri = metadata
            .resource
            .parse()
            .map_err(|_| invalid(format!("resource {:?} is not a URL", metadata.resource)))?;
        let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (resource.scheme_str(), resource.authority())
        else {
            return Err(invalid(format!(
                "resource {:?} is not an absolute http(s) URL",
                metadata.resource
            )));
        };
        let origin = format!("{scheme}://{authority}");
        let secure = scheme == "https";
        if !secure && !matches!(authority.host(), "localhost" | "127.0.0.1" | "[::1]") {
            tracing::warn!(
                resource = %metadata.resource,
                "OAuth PKCE is configured without HTTPS: cookies will not be Secure; \
                 acceptable for local development, not for production"
            );
        }
        let secret = match pkce.session_secret() {
            Some(secret) => secret.to_vec(),
            None => match std::env::var_os(TOKEN_KEY_ENV).filter(|v| !v.is_empty()) {
                Some(value) => value.as_encoded_bytes().to_vec(),
                None => {
                    tracing::warn!(
                        "no OAuth session secret configured and {TOKEN_KEY_ENV} is not set; \
                         using a random one, so a login only completes on the worker that \
                         started it"
                    );
                    let mut secret = vec![0u8; 32];
                    rand::fill(secret.as_mut_slice());
                    secret
                }
            },
        };
        let scope = if metadata.scopes_supported.is_empty() {
            "openid email".to_owned()
        } else {
            metadata.scopes_supported.join(" ")
        };
        let home = if prefix.is_empty() { "/" } else { prefix };
        if HeaderValue::from_str(home).is_err() {
            return Err(invalid(format!("prefix {prefix:?} cannot be a Location")));
        }
        let routes = format!("{prefix}/_oauth");
        Ok(Self {
            prefix: prefix.to_owned(),
            home: home.to_owned(),
            session_path: format!("{routes}/"),
            callback: format!("{routes}/callback"),
            logout: format!("{routes}/logout"),
            token: format!("{routes}/token"),
            metadata_paths: well_known_paths(prefix),
            advertised_token_endpoint: metadata
                .client_secret
                .as_ref()
                .map(|_| format!("{origin}{routes}/token")),
            client_id,
            client_secret: metadata.client_secret.clone(),
            use_id_token: metadata.use_id_token_as_bearer,
            scope,
            redirect_uri: format!("{origin}{routes}/callback"),
            secure,
            key: SessionKey::derive(&secret),
            return_origins: pkce.return_origins().to_vec(),
            discovery: Arc::new(Discovery::new(issuer)),
        })
    }

    /// The flow's route at `path`, if any.
    pub(crate) fn route(&self, path: &str) -> Option<Route> {
        if path == self.callback {
            Some(Route::Callback)
        } else if path == self.logout {
            Some(Route::Logout)
        } else if path == self.token {
            Some(Route::Token)
        } else if self.advertised_token_endpoint.is_some()
            && self.metadata_paths.iter().any(|p| p == path)
        {
            Some(Route::Metadata)
        } else {
            None
        }
    }

    /// `GET {prefix}/_oauth/callback`: checks the state against the
    /// session cookie, exchanges the code, and sends the browser back with
    /// its token.
    pub(crate) async fn callback(self: Arc<Self>, request: Parts) -> Response<ResponseBody> {
        let query = form_decode(request.uri.query().unwrap_or_default());
        let failed = |status, message: &str, detail: Option<&str>| {
            error_page(status, message, detail, &self.home)
        };
        if let Some(error) = first(&query, "error") {
            let description = first(&query, "error_description").unwrap_or(error);
            tracing::warn!(%error, %description, "the authorization server refused the login");
            return failed(
                StatusCode::BAD_REQUEST,
                "The authorization server returned an error.",
                Some(description),
            );
        }
        let (Some(code), Some(state)) = (first(&query, "code"), first(&query, "state")) else {
            return failed(
                StatusCode::BAD_REQUEST,
                "Missing authorization code or state parameter.",
                None,
            );
        };
        let Some(sealed) = cookie(&request.headers, SESSION_COOKIE) else {
            return failed(
                StatusCode::BAD_REQUEST,
                "Session cookie missing or expired. Please try again.",
                None,
            );
        };
        let session = match Session::open(&sealed, &self.key, unix_now()) {
            Ok(session) => session,
            Err(err) => {
                tracing::warn!(%err, "OAuth session cookie refused");
                return failed(
                    StatusCode::BAD_REQUEST,
                    "Session expired or invalid. Please try again.",
                    None,
                );
            }
        };
        if !same_secret(state, &session.state) {
            tracing::warn!("OAuth callback state does not match its session");
            return failed(
                StatusCode::BAD_REQUEST,
                "State mismatch \u{2014} possible CSRF. Please try again.",
                None,
            );
        }
        let Some(endpoints) = self.discovery.endpoints().await else {
            return failed(
                StatusCode::BAD_GATEWAY,
                "Could not reach the authorization server.",
                Some("OIDC discovery failed."),
            );
        };
        let exchange = CodeExchange {
            code,
            redirect_uri: &self.redirect_uri,
            code_verifier: &session.code_verifier,
            client_id: &self.client_id,
            client_secret: self.client_secret.as_deref(),
            use_id_token: self.use_id_token,
        };
        let exchange_failed = |detail: &str| {
            tracing::warn!(%detail, "OAuth token exchange failed");
            failed(
                StatusCode::BAD_GATEWAY,
                "Token exchange with the authorization server failed.",
                Some(detail),
            )
        };
        let tokens = match idp::exchange_code(&endpoints.token, exchange, unix_now()).await {
            Ok(tokens) => tokens,
            Err(detail) => return exchange_failed(&detail),
        };
        // It goes into a cookie or a Location header as it is.
        if !cookie_safe(&tokens.token) {
            return exchange_failed("The token has characters a cookie cannot hold.");
        }
        let clear_session =
            set_cookie(SESSION_COOKIE, "", 0, &self.session_path, self.secure, true);
        tracing::info!("OAuth PKCE login succeeded");
        if !session.return_to.is_empty() {
            let mut fragment = vec![format!("token={}", tokens.token)];
            if let Some(refresh) = &tokens.refresh_token {
                fragment.push(format!("refresh_token={}", quote(refresh)));
            }
            fragment.push(format!("token_endpoint={}", quote(&endpoints.token)));
            fragment.push(format!("client_id={}", quote(&self.client_id)));
            if let Some(secret) = self.client_secret.as_deref().filter(|s| !s.is_empty()) {
                fragment.push(format!("client_secret={}", quote(secret)));
            }
            if self.use_id_token {
                fragment.push("use_id_token=true".to_owned());
            }
            let location = with_fragment(&session.return_to, &fragment.join("&"));
            return match found(&location) {
                Some(response) => with_cookies(response, [clear_session]),
                None => exchange_failed("The authorization server's answer cannot be passed on."),
            };
        }
        let back = validate_original_url(&session.original_url, &self.prefix);
        let auth = set_cookie(
            AUTH_COOKIE,
            &tokens.token,
            tokens.lifetime,
            &self.home,
            self.secure,
            false,
        );
        // The path of a request this server received, or the prefix.
        let response = found(&back).expect("URI characters and the prefix are header-safe");
        with_cookies(response, [auth, clear_session])
    }

    /// `GET {prefix}/_oauth/logout`: forgets the token, back to the landing
    /// page.
    pub(crate) fn logout(&self) -> Response<ResponseBody> {
        let response = found(&self.home).expect("checked in Flow::new");
        with_cookies(
            response,
            [set_cookie(
                AUTH_COOKIE,
                "",
                0,
                &self.home,
                self.secure,
                false,
            )],
        )
    }

    /// A browser arriving with a token and an allowed `_vgi_return_to`
    /// goes straight back to its frontend with the token.
    pub(crate) fn already_signed_in(&self, request: &Parts) -> Option<Response<ResponseBody>> {
        let query = form_decode(request.uri.query()?);
        let return_to = validate_return_to(first(&query, "_vgi_return_to")?, &self.return_origins)?;
        let token = cookie(&request.headers, AUTH_COOKIE)?;
        // The landing page needs no login, so an expired token would come
        // straight back here: let it log in again instead.
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        if idp::jwt_exp(&token).is_some_and(|exp| now >= exp) {
            return None;
        }
        tracing::info!(
            frontend = return_to.split('?').next().unwrap_or_default(),
            "already logged in; back to the external frontend"
        );
        found(&with_fragment(&return_to, &format!("token={token}")))
    }

    /// Whether a `401` to this request becomes a login: a browser's `GET`.
    pub(crate) fn wants_login(request: &Parts) -> bool {
        request.method == http::Method::GET
            && request
                .headers
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
    }

    /// The redirect to the authorization server's login page that replaces
    /// a browser's `401`; `None` (the `401` stands) when discovery fails.
    pub(crate) async fn login(self: Arc<Self>, uri: &Uri) -> Option<Response<ResponseBody>> {
        let Some(endpoints) = self.discovery.endpoints().await else {
            tracing::warn!("no login redirect: OpenID Connect discovery failed");
            return None;
        };
        let code_verifier = session::code_verifier();
        let challenge = session::code_challenge(&code_verifier);
        let state = session::state_nonce();
        let original = match uri.query().filter(|q| !q.is_empty()) {
            Some(query) => format!("{}?{query}", uri.path()),
            None => uri.path().to_owned(),
        };
        let query = form_decode(uri.query().unwrap_or_default());
        let return_to = first(&query, "_vgi_return_to")
            .and_then(|url| validate_return_to(url, &self.return_origins))
            .unwrap_or_default();
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", state.as_str()),
            ("scope", self.scope.as_str()),
        ];
        if !return_to.is_empty() {
            // A frontend refreshes its tokens without the user, so it
            // needs a refresh token, which Google only grants with these.
            params.extend([("access_type", "offline"), ("prompt", "consent")]);
        }
        let location = format!("{}?{}", endpoints.authorization, form_encode(params));
        let session = Session {
            code_verifier,
            state,
            original_url: validate_original_url(&original, &self.prefix),
            return_to,
        };
        let sealed = session.seal(&self.key, unix_now());
        let response = found(&location)?;
        Some(with_cookies(
            response,
            [set_cookie(
                SESSION_COOKIE,
                &sealed,
                MAX_AGE_SECS,
                &self.session_path,
                self.secure,
                true,
            )],
        ))
    }

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

/// `url` with `params` added to its fragment (a fragment of its own when
/// it has none).
fn with_fragment(url: &str, params: &str) -> String {
    let separator = if url.contains('#') { '&' } else { '#' };
    format!("{url}{separator}{params}")
}

/// A `302` to `location`, never cached; `None` when `location` cannot be
/// a header.
fn found(location: &str) -> Option<Response<ResponseBody>> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut response = body::response(StatusCode::FOUND, "text/html; charset=utf-8", Bytes::new());
    let headers = response.headers_mut();
    headers.insert(LOCATION, location);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    Some(response)
}

fn with_cookies(
    mut response: Response<ResponseBody>,
    cookies: impl IntoIterator<Item = String>,
) -> Response<ResponseBody> {
    for cookie in cookies {
        // Every name and value was checked to be cookie-safe.
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
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

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}
