//! Who sent a request, as the transport established it.

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value as Json};

/// The caller's identity: who they are within which authentication domain,
/// and the claims their credential carried. Methods read it through
/// [`CallContext::auth`](crate::CallContext::auth); access logs and spans
/// record the same value.
///
/// Over HTTP it is what the server's authenticator produced; over a Unix
/// socket, the peer process's credentials (domain `unix`); over a pipe, the
/// worker's parent launched it, and the caller is anonymous.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthContext {
    /// The scheme or realm that authenticated the caller (`bearer`, `unix`,
    /// an issuer...).
    pub domain: Option<String>,
    /// Whether the caller was authenticated at all.
    pub authenticated: bool,
    /// The caller's identity within the domain.
    pub principal: Option<String>,
    /// Claims carried by the credential, for the service's own checks.
    pub claims: Map<String, Json>,
}

impl AuthContext {
    /// The context of a request without credentials.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// An authenticated `principal` within `domain`.
    pub fn authenticated(domain: impl Into<String>, principal: impl Into<String>) -> Self {
        Self {
            domain: Some(domain.into()),
            authenticated: true,
            principal: Some(principal.into()),
            claims: Map::new(),
        }
    }

    /// Adds a claim.
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<Json>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The principal, or `""` when there is none.
    pub fn principal_or_empty(&self) -> &str {
        self.principal.as_deref().unwrap_or_default()
    }

    /// The domain, or `""` when there is none.
    pub fn domain_or_empty(&self) -> &str {
        self.domain.as_deref().unwrap_or_default()
    }
}

/// One shared anonymous context, so anonymous calls allocate nothing for it.
pub(crate) fn anonymous() -> Arc<AuthContext> {
    static ANONYMOUS: LazyLock<Arc<AuthContext>> =
        LazyLock::new(|| Arc::new(AuthContext::anonymous()));
    ANONYMOUS.clone()
}
