//! Sending a refused browser to log in, bringing it back with its token
//! through the callback, and logging it out.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, HeaderValue, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{Response, StatusCode, Uri};
use vgirpc_token::unix_now;

use super::flow::Flow;
use super::idp::{self, CodeExchange};
use super::page::error_page;
use super::session::{self, MAX_AGE_SECS, Session};
use super::urls::{
    cookie, cookie_safe, first, form_decode, form_encode, quote, set_cookie, validate_original_url,
    validate_return_to,
};
use super::{AUTH_COOKIE, SESSION_COOKIE};
use crate::body::{self, ResponseBody};

const NO_CACHE: &str = "no-cache, no-store, must-revalidate";

impl Flow {
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

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}
