//! Several authenticators, tried in turn.

use http::request::Parts;

use super::{AuthContext, AuthRejection, Authenticate, OAuthResourceMetadata};

/// Tries authenticators in order; made by [`chain`].
///
/// The first to accept names the caller. A rejection that is
/// [`forbidden`](AuthRejection::forbidden) ends the chain with that
/// rejection; any other sends the request on to the next authenticator.
/// When none accepts, the `401` says `No authenticator accepted the
/// request` (the reference's words) and carries every challenge the
/// members gave, in order, once each, in one `WWW-Authenticate` value.
pub struct Chain {
    members: Vec<Box<dyn Authenticate>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("members", &self.members.len())
            .finish()
    }
}

/// A chain that starts with `first`; add more with [`Chain::or`]:
///
/// ```
/// # fn build(jwt: vgirpc_http::JwtAuthenticator) {
/// use vgirpc_http::{CertificateIdentity, chain, mtls_native};
///
/// let auth = chain(jwt).or(mtls_native(CertificateIdentity::subject()));
/// # let _ = auth;
/// # }
/// ```
pub fn chain(first: impl Authenticate) -> Chain {
    Chain {
        members: vec![Box::new(first)],
    }
}

impl Chain {
    /// Tries `next` after the authenticators already in the chain.
    pub fn or(mut self, next: impl Authenticate) -> Self {
        self.members.push(Box::new(next));
        self
    }
}

impl Authenticate for Chain {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        let mut challenges: Vec<String> = Vec::new();
        for member in &self.members {
            match member.authenticate(request) {
                Ok(context) => return Ok(context),
                Err(rejection) if rejection.forbidden => return Err(rejection),
                Err(rejection) => {
                    tracing::debug!(reason = %rejection.message, "authenticator declined; trying the next");
                    if let Some(challenge) = rejection.challenge
                        && !challenges.contains(&challenge)
                    {
                        challenges.push(challenge);
                    }
                }
            }
        }
        let rejection = AuthRejection::new("No authenticator accepted the request");
        Err(if challenges.is_empty() {
            rejection
        } else {
            rejection.with_challenge(challenges.join(", "))
        })
    }

    /// The metadata of the first member that publishes some.
    fn resource_metadata(&self) -> Option<&OAuthResourceMetadata> {
        self.members
            .iter()
            .find_map(|member| member.resource_metadata())
    }
}
