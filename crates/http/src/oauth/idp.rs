//! Talking to the authorization server: OpenID Connect discovery of its
//! endpoints, the code exchange of the callback, and the forwarded token
//! requests of the proxy.
//!
//! The requests block ([`outgoing`]), so they run on tokio's blocking
//! threads; the reactor only waits for them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value as Json;

use super::urls::form_encode;
use crate::error::HttpError;
use crate::outgoing;

/// The largest answer read from the authorization server.
const MAX_REPLY_BYTES: usize = 1 << 20;

/// How long a failed discovery is remembered before it is tried again, so
/// an unreachable server is not asked once per browser request.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where the authorization server takes logins and issues tokens.
#[derive(Debug)]
pub(crate) struct Endpoints {
    pub(crate) authorization: String,
    pub(crate) token: String,
}

#[derive(Debug)]
enum Known {
    Nothing,
    Found(Arc<Endpoints>),
    Failed(Instant),
}

/// The discovered endpoints of one issuer, fetched on first need and kept.
#[derive(Debug)]
pub(crate) struct Discovery {
    issuer: String,
    known: Mutex<Known>,
    /// Held for the length of one fetch, on a blocking thread, so that
    /// browsers arriving together cause one request; `known` itself is only
    /// ever held for a moment, since the reactor reads it.
    fetching: Mutex<()>,
}

impl Discovery {
    pub(crate) fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            known: Mutex::new(Known::Nothing),
            fetching: Mutex::new(()),
        }
    }

    /// The endpoints, or `None` when discovery failed (now or less than
    /// [`RETRY_AFTER`] ago).
    pub(crate) async fn endpoints(self: &Arc<Self>) -> Option<Arc<Endpoints>> {
        if let Some(known) = self.remembered() {
            return known;
        }
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.fetch())
            .await
            .ok()
            .flatten()
    }

    /// `Some` when there is nothing to fetch: the endpoints, or a failure
    /// recent enough to stand.
    fn remembered(&self) -> Option<Option<Arc<Endpoints>>> {
        match &*self.known.lock().unwrap_or_else(PoisonError::into_inner) {
            Known::Found(endpoints) => Some(Some(Arc::clone(endpoints))),
            Known::Failed(at) if at.elapsed() < RETRY_AFTER => Some(None),
            _ => None,
        }
    }

    fn fetch(&self) -> Option<Arc<Endpoints>> {
        let _one_at_a_time = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = self.remembered() {
            return known;
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let outcome = discover(&url);
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(endpoints) => {
                tracing::debug!(issuer = %self.issuer, authorization = %endpoints.authorization,
                    token = %endpoints.token, "OpenID Connect discovery");
                let endpoints = Arc::new(endpoints);
                *known = Known::Found(Arc::clone(&endpoints));
                Some(endpoints)
            }
            Err(err) => {
                tracing::warn!(issuer = %self.issuer, %err, "OpenID Connect discovery failed");
                *known = Known::Failed(Instant::now());
                None
            }
        }
    }
}

fn discover(url: &str) -> Result<Endpoints, String> {
    let reply = outgoing::send(
        Method::GET,
        url,
        &[("accept", "application/json")],
        Bytes::new(),
        MAX_REPLY_BYTES,
    )
    .map_err(|e| e.to_string())?;
    if !reply.status.is_success() {
        return Err(format!("{url} answered {}", reply.status));
    }
    let document: Json = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("{url} did not answer JSON: {e}"))?;
    let field = |name: &str| {
        document[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{url} has no {name}"))
    };
    Ok(Endpoints {
        authorization: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
    })
}

/// The authorization server's answer to a forwarded token request.
#[derive(Debug)]
pub(crate) struct TokenReply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// `POST`s `form` to the token endpoint and returns its answer, whatever
/// its status.
pub(crate) async fn post_form(
    token_endpoint: &str,
    form: Vec<(&'static str, String)>,
) -> Result<TokenReply, HttpError> {
    let url = token_endpoint.to_owned();
    let body = form_encode(form.iter().map(|(n, v)| (*n, v.as_str())));
    let reply = tokio::task::spawn_blocking(move || {
        outgoing::send(
            Method::POST,
            &url,
            &[
                (CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
            ],
            Bytes::from(body),
            MAX_REPLY_BYTES,
        )
    })
    .await
    .map_err(|_| HttpError::outgoing(token_endpoint, "the request was cancelled"))??;
    Ok(TokenReply {
        status: reply.status,
        headers: reply.headers,
        body: reply.body,
    })
}

/// How long the auth cookie lives when the token says nothing of it.
pub(crate) const DEFAULT_TOKEN_LIFETIME: u64 = 3600;

/// The shortest life given to a cookie of an ID token.
const MIN_ID_TOKEN_LIFETIME: u64 = 60;

/// What the browser keeps after a successful exchange.
#[derive(Debug)]
pub(crate) struct Tokens {
    /// The bearer token: the access token, or the ID token when the
    /// server says clients should send that.
    pub(crate) token: String,
    /// Seconds the cookie holding it lives.
    pub(crate) lifetime: u64,
    pub(crate) refresh_token: Option<String>,
}

/// The parameters of an authorization-code exchange.
#[derive(Debug)]
pub(crate) struct CodeExchange<'a> {
    pub(crate) code: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) code_verifier: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: Option<&'a str>,
    pub(crate) use_id_token: bool,
}

/// Exchanges the callback's code for a token; the error says why not, to
/// be shown on the error page.
pub(crate) async fn exchange_code(
    token_endpoint: &str,
    exchange: CodeExchange<'_>,
    now: u64,
) -> Result<Tokens, String> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", exchange.code.to_owned()),
        ("redirect_uri", exchange.redirect_uri.to_owned()),
        ("code_verifier", exchange.code_verifier.to_owned()),
        ("client_id", exchange.client_id.to_owned()),
    ];
    if let Some(secret) = exchange.client_secret {
        form.push(("client_secret", secret.to_owned()));
    }
    let reply = post_form(token_endpoint, form)
        .await
        .map_err(|e| format!("Token exchange failed: {e}"))?;
    if !reply.status.is_success() {
        return Err(format!(
            "Token exchange failed: the token endpoint answered {}",
            reply.status
        ));
    }
    let body: Json = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("Token exchange failed: the answer is not JSON: {e}"))?;
    let refresh_token = body["refresh_token"].as_str().map(str::to_owned);
    let text = |name: &str| body[name].as_str().filter(|t| !t.is_empty());
    if exchange.use_id_token {
        let token = text("id_token").ok_or("Token response missing id_token")?;
        let lifetime = jwt_exp(token).map_or(DEFAULT_TOKEN_LIFETIME, |exp| {
            u64::try_from(exp.saturating_sub(i64::try_from(now).unwrap_or(i64::MAX)))
                .unwrap_or(0)
                .max(MIN_ID_TOKEN_LIFETIME)
        });
        return Ok(Tokens {
            token: token.to_owned(),
            lifetime,
            refresh_token,
        });
    }
    let token = text("access_token").ok_or("Token response missing access_token")?;
    let lifetime = match &body["expires_in"] {
        Json::Null => Some(DEFAULT_TOKEN_LIFETIME),
        Json::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or("Token response has an invalid expires_in")?;
    Ok(Tokens {
        token: token.to_owned(),
        lifetime,
        refresh_token,
    })
}

/// The `exp` claim of a JWT, read without checking its signature (only to
/// time cookies and redirects; authentication checks the token itself).
pub(crate) fn jwt_exp(token: &str) -> Option<i64> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = token.split('.').nth(1)?;
    let claims: Json =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    match &claims["exp"] {
        Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn the_exp_claim_is_read_without_a_key() {
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1700000000}"#)), Some(1_700_000_000));
        assert_eq!(
            jwt_exp(&jwt(r#"{"exp":1700000000.5}"#)),
            Some(1_700_000_000)
        );
        assert_eq!(jwt_exp(&jwt(r#"{"sub":"a"}"#)), None);
        assert_eq!(jwt_exp("opaque-token"), None);
        assert_eq!(jwt_exp("a.!!!.c"), None);
    }
}
