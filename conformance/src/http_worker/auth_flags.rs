//! The authentication flags: JWT, client certificates (native, from a
//! proxy's header, Envoy's XFCC), RFC 9728 metadata, and `--http-pkce`,
//! the Go conformance worker's browser-login server.

use std::time::Duration;

use vgirpc_http::{
    AuthContext, AuthRejection, Authenticate, CertificateIdentity, Chain, HttpConfig, JwksSource,
    JwtAuthenticator, JwtConfig, OAuthPkce, OAuthResourceMetadata, chain, mtls_header, mtls_native,
    mtls_xfcc, with_resource_metadata,
};

use super::values::seconds;

/// The authentication flags, collected while the command line is parsed.
#[derive(Debug, Default)]
pub(super) struct AuthFlags {
    jwks: Option<String>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    principal_claim: Option<String>,
    jwt_leeway: Option<Duration>,
    mtls_header: Option<String>,
    mtls_native: bool,
    xfcc: bool,
    resource_metadata: Option<String>,
}

impl AuthFlags {
    pub(super) fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--jwks" => self.jwks = Some(value()?),
            "--issuer" => self.issuers.push(value()?),
            "--audience" => self.audiences.push(value()?),
            "--principal-claim" => self.principal_claim = Some(value()?),
            "--jwt-leeway" => self.jwt_leeway = Some(seconds(flag, &value()?)?),
            "--mtls-header" => self.mtls_header = Some(value()?),
            "--mtls-native" => self.mtls_native = true,
            "--xfcc" => self.xfcc = true,
            "--resource-metadata" => self.resource_metadata = Some(value()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(super) fn any(&self) -> bool {
        self.jwks.is_some()
            || !self.issuers.is_empty()
            || !self.audiences.is_empty()
            || self.principal_claim.is_some()
            || self.jwt_leeway.is_some()
            || self.mtls_header.is_some()
            || self.mtls_native
            || self.xfcc
            || self.resource_metadata.is_some()
    }

    /// `config` with the authenticators asked for, chained in a fixed
    /// order; `None` when none is. Fetches a JWKS given by URL.
    pub(super) fn apply(self, config: HttpConfig) -> Result<Option<HttpConfig>, String> {
        fn add(auth: Option<Chain>, next: impl Authenticate) -> Option<Chain> {
            Some(match auth {
                Some(auth) => auth.or(next),
                None => chain(next),
            })
        }
        let mut auth = None;
        match self.jwks {
            Some(jwks) => {
                let mut jwt = JwtConfig::new(self.issuers.clone(), self.audiences)
                    .jwks(JwksSource::parse(&jwks));
                if let Some(claim) = self.principal_claim {
                    jwt = jwt.principal_claim(claim);
                }
                if let Some(leeway) = self.jwt_leeway {
                    jwt = jwt.leeway(leeway);
                }
                let jwt = JwtAuthenticator::new(jwt).map_err(|e| format!("--jwks: {e}"))?;
                auth = add(auth, jwt);
            }
            None if !self.issuers.is_empty() && self.resource_metadata.is_none()
                || !self.audiences.is_empty()
                || self.principal_claim.is_some()
                || self.jwt_leeway.is_some() =>
            {
                return Err("the JWT flags need --jwks".into());
            }
            None => {}
        }
        if let Some(header) = self.mtls_header {
            auth = add(auth, mtls_header(header, CertificateIdentity::subject()));
        }
        if self.xfcc {
            auth = add(auth, mtls_xfcc());
        }
        if self.mtls_native {
            auth = add(auth, mtls_native(CertificateIdentity::subject()));
        }
        let Some(auth) = auth else {
            return match self.resource_metadata {
                Some(_) => Err("--resource-metadata needs an authentication flag".into()),
                None => Ok(None),
            };
        };
        Ok(Some(match self.resource_metadata {
            Some(resource) => {
                let metadata = OAuthResourceMetadata::new(resource, self.issuers);
                let auth = with_resource_metadata(auth, metadata)
                    .map_err(|e| format!("--resource-metadata: {e}"))?;
                config.with_authenticate(auth)
            }
            None => config.with_authenticate(auth),
        }))
    }
}

/// The client the Go worker's `--http-pkce` server is registered as.
const PKCE_CLIENT: (&str, &str) = ("my-client-id", "my-client-secret");

/// `--http-pkce` and its options: the Go conformance worker's server for
/// the reference's `test_oauth_token_proxy_conformance.py`, which starts it
/// with `--http-pkce --port P --idp-url URL --resource URL`.
#[derive(Debug, Default)]
pub(super) struct PkceFlags {
    pub(super) enabled: bool,
    pub(super) idp_url: Option<String>,
    pub(super) resource: Option<String>,
}

impl PkceFlags {
    /// The flags, unless an option came without `--http-pkce`.
    pub(super) fn check(self) -> Result<Self, String> {
        if !self.enabled && (self.idp_url.is_some() || self.resource.is_some()) {
            return Err("--idp-url and --resource need --http-pkce".into());
        }
        Ok(self)
    }

    /// `config` serving the browser login flow, when asked for.
    pub(super) fn apply(self, config: HttpConfig) -> Result<HttpConfig, String> {
        if !self.enabled {
            return Ok(config);
        }
        let resource = self
            .resource
            .unwrap_or_else(|| "http://127.0.0.1:8000/vgi".into());
        let idp = self
            .idp_url
            .unwrap_or_else(|| "http://127.0.0.1:9999".into());
        let metadata = OAuthResourceMetadata {
            client_id: Some(PKCE_CLIENT.0.into()),
            client_secret: Some(PKCE_CLIENT.1.into()),
            ..OAuthResourceMetadata::new(resource, [idp])
        };
        // As the Go worker: no credential is ever accepted, so every
        // request but the health check and the flow's own routes is
        // refused, the way the test's reference server refuses them.
        let refuse = |_: &http::request::Parts| -> Result<AuthContext, _> {
            Err(AuthRejection::new("auth required"))
        };
        let auth =
            with_resource_metadata(refuse, metadata).map_err(|e| format!("--http-pkce: {e}"))?;
        Ok(config
            .with_prefix("/vgi")
            .with_authenticate(auth)
            .with_oauth_pkce(OAuthPkce::new()))
    }
}
