//! Browser logins with OAuth 2.0 and PKCE (the reference's `_oauth_pkce`),
//! and the token endpoint proxy for single-page apps; see [`OAuthPkce`].

mod flow;
mod idp;
mod login;
mod page;
mod session;
mod token_proxy;
mod urls;

use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderValue};
use http::request::Parts;

use crate::auth::{AuthContext, AuthRejection, Authenticate, OAuthResourceMetadata, chain};
use crate::config::HttpConfig;
use crate::error::HttpError;
pub(crate) use flow::{Flow, Route};

/// The cookie holding the bearer token after a browser login. Scripts of
/// the page may read it (it is not `HttpOnly`), as the reference's
/// browser clients expect.
pub const AUTH_COOKIE: &str = "_vgi_auth";

/// The cookie holding a login in progress, under `{prefix}/_oauth/` only.
pub const SESSION_COOKIE: &str = "_vgi_oauth_session";

/// The origins that may receive a token through `_vgi_return_to` unless
/// [`OAuthPkce::with_return_origins`] says otherwise (the reference's).
pub const DEFAULT_RETURN_ORIGINS: &[&str] = &["https://cupola.query-farm.services"];

/// Browser logins with OAuth 2.0 and PKCE, and the token endpoint proxy
/// for single-page apps ([`HttpConfig::with_oauth_pkce`]).
///
/// On a server whose authenticator publishes [`OAuthResourceMetadata`]
/// with a `client_id`:
///
/// 1. a browser `GET` that would be refused `401` (its `Accept` names
///    `text/html`) is redirected to the authorization server's login page
///    instead, with an S256 code challenge and a `state` nonce; the code
///    verifier, the state and the page to come back to travel in a signed
///    cookie ([`SESSION_COOKIE`]) that lives 10 minutes;
/// 2. the authorization server sends the browser to
///    `{prefix}/_oauth/callback` with a code, which the server exchanges
///    for a token (with the client secret, when there is one);
/// 3. the token goes into the [`AUTH_COOKIE`] cookie, which the
///    authenticator reads when a request has no `Authorization` header
///    (as [`cookie_authenticate`] does), and the browser returns to its
///    page.
///
/// `{prefix}/_oauth/logout` deletes the cookie. An external frontend may
/// ask for the token itself with `_vgi_return_to=<its URL>` on the first
/// request: the login then ends with a redirect there, the token (and the
/// refresh token and client details) in the URL fragment. Only plain-http
/// localhost and the origins of [`OAuthPkce::with_return_origins`] may
/// receive it.
///
/// When the metadata has a `client_secret`, `POST {prefix}/_oauth/token`
/// forwards a single-page app's `authorization_code` and `refresh_token`
/// grants to the authorization server with the secret added, so the app
/// need not hold it, and the metadata document advertises it as
/// `token_endpoint`.
///
/// The authorization server's endpoints come from its OpenID Connect
/// discovery document (at the first of the metadata's
/// `authorization_servers`), fetched on first need.
#[derive(Clone)]
pub struct OAuthPkce {
    session_secret: Option<Vec<u8>>,
    return_origins: Vec<String>,
}

impl std::fmt::Debug for OAuthPkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthPkce")
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| ".."),
            )
            .field("return_origins", &self.return_origins)
            .finish()
    }
}

impl Default for OAuthPkce {
    fn default() -> Self {
        Self::new()
    }
}

impl OAuthPkce {
    /// The flow with the reference's defaults: session cookies signed with
    /// a key drawn from `$VGI_TOKEN_KEY` (else from a random secret), and
    /// [`DEFAULT_RETURN_ORIGINS`].
    pub fn new() -> Self {
        Self {
            session_secret: None,
            return_origins: DEFAULT_RETURN_ORIGINS
                .iter()
                .map(|o| (*o).to_owned())
                .collect(),
        }
    }

    /// The secret session cookies are signed with (a key is derived from
    /// it for that use alone). Every worker behind one address needs the
    /// same, since the callback may reach another worker than the one
    /// that sent the browser away; without one the server uses
    /// `$VGI_TOKEN_KEY`, and failing that a random secret (and warns), so
    /// logins only complete on the worker that started them.
    pub fn with_session_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.session_secret = Some(secret.as_ref().to_vec());
        self
    }

    /// The origins (`https://host` or `https://host:port`) an external
    /// frontend may be at to receive a token through `_vgi_return_to`, and
    /// whose scripts may call the token endpoint; plain-http localhost
    /// always may.
    pub fn with_return_origins<S: Into<String>>(
        mut self,
        origins: impl IntoIterator<Item = S>,
    ) -> Self {
        self.return_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    pub(crate) fn session_secret(&self) -> Option<&[u8]> {
        self.session_secret.as_deref()
    }

    pub(crate) fn return_origins(&self) -> &[String] {
        &self.return_origins
    }
}

/// Reads the bearer token from a cookie and lets `inner` judge it, as if
/// it had come in an `Authorization: Bearer` header; made by
/// [`cookie_authenticate`].
#[derive(Debug, Clone)]
pub struct CookieAuthenticate<A> {
    inner: A,
    cookie_name: String,
}

/// Authenticates with the token of the [`AUTH_COOKIE`] cookie, checked by
/// `inner` (the reference's `make_cookie_authenticate`): a request without
/// the cookie is refused with `No auth cookie`. Any `Authorization` header
/// of the request is replaced by the cookie's token for `inner`.
///
/// Browser logins chain it after the server's own authenticator, so a
/// header still wins:
///
/// ```
/// # fn build(jwt: vgirpc_http::JwtAuthenticator) {
/// use vgirpc_http::{chain, cookie_authenticate};
///
/// let auth = chain(jwt.clone()).or(cookie_authenticate(jwt));
/// # let _ = auth;
/// # }
/// ```
pub fn cookie_authenticate<A: Authenticate>(inner: A) -> CookieAuthenticate<A> {
    CookieAuthenticate {
        inner,
        cookie_name: AUTH_COOKIE.to_owned(),
    }
}

impl<A> CookieAuthenticate<A> {
    /// Reads the token from cookie `name` instead.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }
}

impl<A: Authenticate> Authenticate for CookieAuthenticate<A> {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        let token = urls::cookie(&request.headers, &self.cookie_name)
            .ok_or_else(|| AuthRejection::new("No auth cookie"))?;
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| AuthRejection::new("No auth cookie"))?;
        let mut request = request.clone();
        request.headers.insert(AUTHORIZATION, header);
        self.inner.authenticate(&request)
    }

    fn resource_metadata(&self) -> Option<&OAuthResourceMetadata> {
        self.inner.resource_metadata()
    }
}

/// The configured authenticator, held twice once the cookie reader is
/// chained after it.
struct Shared(Arc<dyn Authenticate>);

impl Authenticate for Shared {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        self.0.authenticate(request)
    }

    fn resource_metadata(&self) -> Option<&OAuthResourceMetadata> {
        self.0.resource_metadata()
    }
}

/// Sets up the flow `config` asks for: the authenticator learns to read
/// the cookie, and the routes come back to be layered in front of the
/// server. Fails when the authenticator publishes no metadata with a
/// client id.
pub(crate) fn install(
    mut config: HttpConfig,
) -> Result<(HttpConfig, Option<Arc<Flow>>), HttpError> {
    let Some(pkce) = config.oauth_pkce.take() else {
        return Ok((config, None));
    };
    let needs = |what: &str| {
        HttpError::Config(format!(
            "OAuth PKCE needs {what}: an authenticator made with with_resource_metadata, \
             whose OAuthResourceMetadata has a client_id"
        ))
    };
    let authenticate = config
        .authenticate
        .take()
        .ok_or_else(|| needs("an authenticator"))?;
    let metadata = authenticate
        .resource_metadata()
        .ok_or_else(|| needs("resource metadata"))?;
    if metadata.client_id.is_none() {
        return Err(needs("a client_id"));
    }
    let flow = Flow::new(&pkce, metadata, &config.prefix)?;
    config.authenticate = Some(Arc::new(
        chain(Shared(Arc::clone(&authenticate))).or(cookie_authenticate(Shared(authenticate))),
    ));
    Ok((config, Some(Arc::new(flow))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri("/vgi/echo");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn inner() -> impl Authenticate {
        crate::auth::bearer(|token| match token {
            "good" => Ok(AuthContext::authenticated("bearer", "alice")),
            _ => Err(AuthRejection::new("bad token")),
        })
    }

    #[test]
    fn the_cookie_token_is_judged_as_a_bearer_token() {
        let auth = cookie_authenticate(inner());
        let ok = auth
            .authenticate(&parts(&[("cookie", "a=b; _vgi_auth=good")]))
            .unwrap();
        assert_eq!(ok.principal.as_deref(), Some("alice"));
        // The cookie's token stands in for whatever header was sent.
        let ok = auth
            .authenticate(&parts(&[
                ("cookie", "_vgi_auth=good"),
                ("authorization", "Bearer wrong"),
            ]))
            .unwrap();
        assert_eq!(ok.principal.as_deref(), Some("alice"));
        let no_cookie = auth.authenticate(&parts(&[])).unwrap_err();
        assert_eq!(no_cookie.message, "No auth cookie");
        let bad = auth
            .authenticate(&parts(&[("cookie", "_vgi_auth=evil")]))
            .unwrap_err();
        assert_eq!(bad.message, "bad token");
        let renamed = cookie_authenticate(inner()).with_cookie_name("tok");
        assert!(
            renamed
                .authenticate(&parts(&[("cookie", "tok=good")]))
                .is_ok()
        );
    }
}
