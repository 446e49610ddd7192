//! One server's login flow: where its routes are, and what answering them
//! needs, settled once from the configuration. The answers themselves are
//! in `login` (the browser's round trip) and `token_proxy`.

use std::sync::Arc;

use http::Uri;
use http::header::HeaderValue;
use vgirpc_token::TOKEN_KEY_ENV;

use super::OAuthPkce;
use super::idp::Discovery;
use super::session::SessionKey;
use crate::auth::{OAuthResourceMetadata, well_known_paths};
use crate::error::HttpError;

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
    pub(super) prefix: String,
    /// The prefix, or `/` when it is empty: where logouts and failed
    /// logins lead, and the path of the auth cookie.
    pub(super) home: String,
    /// Where the session cookie is sent back: the flow's own routes only.
    pub(super) session_path: String,
    callback: String,
    logout: String,
    token: String,
    metadata_paths: Vec<String>,
    /// `{origin}{prefix}/_oauth/token`, advertised when there is a client
    /// secret for the proxy to add.
    pub(super) advertised_token_endpoint: Option<String>,
    pub(super) client_id: String,
    pub(super) client_secret: Option<String>,
    pub(super) use_id_token: bool,
    pub(super) scope: String,
    pub(super) redirect_uri: String,
    /// Cookies are `Secure` when the resource is served over https.
    pub(super) secure: bool,
    pub(super) key: SessionKey,
    pub(super) return_origins: Vec<String>,
    pub(super) discovery: Arc<Discovery>,
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
}
