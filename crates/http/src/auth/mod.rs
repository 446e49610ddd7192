//! Authentication hooks: a callback that names the caller or rejects the
//! request, and the authenticators built on it: bearer tokens, JWTs checked
//! against a JWKS, client certificates (forwarded by a proxy or verified by
//! our own TLS), and a chain of them.
//!
//! A rejected request is answered `401` with a plain-text body before any
//! method is resolved (WIRE_PROTOCOL §10, "Authentication"). The accepted
//! identity binds the request's stream-state tokens: a token minted for one
//! principal does not open for another.

mod chain;
mod jwks;
mod jwt;
mod metadata;
mod mtls;
mod xfcc;

use std::sync::Arc;

use http::request::Parts;
pub use vgirpc::AuthContext;
use vgirpc_token::Identity;

pub use chain::{Chain, chain};
pub use jwks::JwksSource;
pub use jwt::{DEFAULT_JWT_LEEWAY, JwtAuthenticator, JwtConfig};
pub use metadata::{OAuthResourceMetadata, WithResourceMetadata, with_resource_metadata};
pub(crate) use metadata::{metadata_challenge, well_known_paths};
pub use mtls::{
    CertificateIdentity, ClientCertificate, ClientCertificateAuth, FingerprintAlgorithm,
    PeerCertificate, mtls_header, mtls_native,
};
pub use xfcc::{XfccAuth, XfccElement, XfccSelect, mtls_xfcc, parse_xfcc};

/// The identity stream-state tokens are bound to: a token minted for one
/// caller does not open for another.
pub(crate) fn token_identity(auth: &AuthContext) -> Identity {
    if !auth.authenticated {
        return Identity::Anonymous;
    }
    Identity::Authenticated {
        domain: auth.domain_or_empty().to_owned(),
        principal: auth.principal_or_empty().to_owned(),
    }
}

/// Why a request was refused; sent as the plain-text body of the `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRejection {
    /// The message the client sees.
    pub message: String,
    /// A `WWW-Authenticate` challenge to send with the `401`, if any.
    pub challenge: Option<String>,
    /// The credentials were recognised and refused, so a [`chain`] asks no
    /// further authenticator (the reference's `PermissionError`); otherwise
    /// they were missing or not understood, and the next one is tried.
    pub forbidden: bool,
}

impl AuthRejection {
    /// A rejection with `message` and no challenge.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            challenge: None,
            forbidden: false,
        }
    }

    /// A rejection that ends a [`chain`]: the caller is known and refused.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            forbidden: true,
            ..Self::new(message)
        }
    }

    /// Adds a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }
}

/// Decides who a request comes from, or refuses it.
///
/// It runs on the server's async threads for every request except
/// `GET`/`OPTIONS {prefix}/health` and `OPTIONS` capability probes, so it
/// must not block: look credentials up in memory, not over the network.
/// Any `Fn(&Parts) -> Result<AuthContext, AuthRejection>` is one.
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates the request whose head is `request`.
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection>;

    /// The protected-resource metadata the server publishes for clients
    /// of this authenticator (see [`with_resource_metadata`]); none by
    /// default.
    fn resource_metadata(&self) -> Option<&OAuthResourceMetadata> {
        None
    }
}

impl<F> Authenticate for F
where
    F: Fn(&Parts) -> Result<AuthContext, AuthRejection> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        self(request)
    }
}

/// Authenticates `Authorization: Bearer <token>` with `validate`, which
/// names the token's owner or rejects it.
pub fn bearer<V>(validate: V) -> impl Authenticate
where
    V: Fn(&str) -> Result<AuthContext, AuthRejection> + Send + Sync + 'static,
{
    move |request: &Parts| {
        let token = bearer_token(request)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                AuthRejection::new("Missing or invalid Authorization header")
                    .with_challenge("Bearer")
            })?;
        validate(token)
    }
}

/// Bearer authentication against a fixed table of tokens.
///
/// Every entry is compared in full on every request, so response timing does
/// not reveal how much of a guessed token was right.
pub fn bearer_static(tokens: impl IntoIterator<Item = (String, AuthContext)>) -> impl Authenticate {
    let tokens: Arc<Vec<(String, AuthContext)>> = Arc::new(tokens.into_iter().collect());
    bearer(move |presented| {
        let mut found = None;
        for (known, context) in tokens.iter() {
            if constant_time_eq(presented.as_bytes(), known.as_bytes()) && found.is_none() {
                found = Some(context.clone());
            }
        }
        found.ok_or_else(|| AuthRejection::new("Unknown bearer token").with_challenge("Bearer"))
    })
}

/// The token of an `Authorization: Bearer <token>` header, if the request
/// has one (the scheme spelled as the reference expects it).
pub(crate) fn bearer_token(request: &Parts) -> Option<&str> {
    request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

/// An RFC 6750 challenge for a token that was presented and refused.
pub(crate) fn invalid_token_challenge(description: &str) -> String {
    format!(
        "Bearer error=\"invalid_token\", error_description=\"{}\"",
        quotable(description)
    )
}

/// `text` made fit for a quoted challenge parameter: RFC 6750 allows
/// neither quotes nor backslashes nor anything outside printable ASCII in
/// `error_description`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// Byte comparison whose running time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Refuses every request; a server behind it answers only its health check.
pub fn reject_all() -> impl Authenticate {
    |_: &Parts| Err(AuthRejection::new("authentication required"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(authorization: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri("/vgi/echo");
        if let Some(value) = authorization {
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn static_bearer_tokens_name_their_owner() {
        let auth = bearer_static([(
            "s3cret".to_owned(),
            AuthContext::authenticated("bearer", "alice"),
        )]);
        let ok = auth.authenticate(&parts(Some("Bearer s3cret"))).unwrap();
        assert_eq!(ok.principal.as_deref(), Some("alice"));
        assert_eq!(
            token_identity(&ok),
            Identity::authenticated("bearer", "alice")
        );
        for header in [
            None,
            Some("Bearer s3cre"),
            Some("Basic s3cret"),
            Some("Bearer "),
        ] {
            let err = auth.authenticate(&parts(header)).unwrap_err();
            assert_eq!(err.challenge.as_deref(), Some("Bearer"), "{header:?}");
        }
    }

    #[test]
    fn anonymous_callers_share_the_anonymous_identity() {
        assert_eq!(
            token_identity(&AuthContext::anonymous()),
            Identity::Anonymous
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
