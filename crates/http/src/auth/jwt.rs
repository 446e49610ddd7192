//! Bearer JWTs checked against a JSON Web Key Set: signature, issuer,
//! audience, expiry and not-before, as the reference's `jwt_authenticate`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::{Map, Value as Json};

use super::jwks::{JwksSource, KeyStore, Refresh};
use super::{AuthContext, AuthRejection, Authenticate, bearer_token, invalid_token_challenge};
use crate::error::HttpError;

/// Clock skew allowed on `exp` and `nbf` unless configured otherwise:
/// none, as in the reference.
pub const DEFAULT_JWT_LEEWAY: Duration = Duration::ZERO;

/// The signature algorithms accepted unless configured otherwise: every
/// asymmetric one. Shared-secret algorithms (`HS*`) are never accepted, so
/// a public key from the JWKS can never be used as an HMAC secret.
const DEFAULT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// How a [`JwtAuthenticator`] checks tokens.
///
/// ```
/// use std::time::Duration;
/// use vgirpc_http::{JwksSource, JwtConfig};
///
/// let config = JwtConfig::new(["https://login.example.com/"], ["https://api.example.com"])
///     .jwks(JwksSource::Url("https://login.example.com/.well-known/jwks.json".into()))
///     .principal_claim("email")
///     .leeway(Duration::from_secs(30));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct JwtConfig {
    issuers: Vec<String>,
    audiences: Vec<String>,
    jwks: JwksSource,
    principal_claim: String,
    domain: String,
    leeway: Duration,
    algorithms: Vec<String>,
    require_exp: bool,
    refresh: Refresh,
}

impl JwtConfig {
    /// Tokens whose `iss` is one of `issuers` and whose `aud` names one of
    /// `audiences`; both claims are required. The keys come from OpenID
    /// Connect discovery on the first issuer unless [`JwtConfig::jwks`]
    /// says otherwise.
    pub fn new<I, A>(issuers: I, audiences: A) -> Self
    where
        I: IntoIterator<Item: Into<String>>,
        A: IntoIterator<Item: Into<String>>,
    {
        Self {
            issuers: issuers.into_iter().map(Into::into).collect(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            jwks: JwksSource::Discover,
            principal_claim: "sub".into(),
            domain: "jwt".into(),
            leeway: DEFAULT_JWT_LEEWAY,
            algorithms: DEFAULT_ALGORITHMS.map(String::from).to_vec(),
            require_exp: false,
            refresh: Refresh {
                every: Duration::from_secs(3600),
                at_most_every: Duration::from_secs(30),
            },
        }
    }

    /// Where the signing keys come from.
    pub fn jwks(mut self, source: JwksSource) -> Self {
        self.jwks = source;
        self
    }

    /// The claim that names the caller (`sub` by default). A claim that is
    /// not a string becomes its JSON text; a missing one, the empty string.
    pub fn principal_claim(mut self, claim: impl Into<String>) -> Self {
        self.principal_claim = claim.into();
        self
    }

    /// The [`AuthContext::domain`] of accepted callers (`jwt` by default).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// Clock skew allowed on `exp` and `nbf`, in whole seconds
    /// ([`DEFAULT_JWT_LEEWAY`] by default).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The accepted signature algorithms by JOSE name (`RS256`, `ES256`,
    /// `EdDSA`...), instead of every asymmetric one. `none` and the `HS*`
    /// family are refused when the authenticator is built.
    pub fn algorithms<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.algorithms = names.into_iter().map(Into::into).collect();
        self
    }

    /// Refuses tokens without `exp`. Off by default, as in the reference,
    /// which checks `exp` only when a token has one.
    pub fn require_exp(mut self, required: bool) -> Self {
        self.require_exp = required;
        self
    }

    /// How often a key set fetched from a URL is fetched again (hourly by
    /// default), and the shortest time between two fetches when tokens
    /// name unknown key ids (30 s by default).
    pub fn refresh(mut self, every: Duration, at_most_every: Duration) -> Self {
        self.refresh = Refresh {
            every,
            at_most_every,
        };
        self
    }
}

/// Authenticates `Authorization: Bearer <JWT>` against a JWKS.
///
/// The caller is named by the principal claim in the domain `jwt`, and
/// every claim of the token is in [`AuthContext::claims`]. A refused token
/// is answered `401` with `Invalid JWT: ...` and an RFC 6750 challenge
/// (`Bearer error="invalid_token", error_description="..."`); a request
/// without a bearer token gets `Missing or invalid Authorization header`
/// and a bare `Bearer` challenge.
///
/// Keys are held in memory; see [`JwksSource`] for where they come from.
/// A set at a URL is refreshed by a background thread (hourly, and when a
/// token names a key id the set lacks, at most every 30 s); the request
/// naming the unknown key is refused, and the next one after the refresh
/// goes through. Cloning shares the key set.
#[derive(Clone)]
pub struct JwtAuthenticator {
    inner: Arc<Inner>,
}

struct Inner {
    keys: KeyStore,
    /// One validation per accepted algorithm: the algorithm a token is
    /// checked with is always the one its header names, and only if listed.
    validations: Vec<(String, Algorithm, Validation)>,
    principal_claim: String,
    domain: String,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("domain", &self.inner.domain)
            .field("principal_claim", &self.inner.principal_claim)
            .field("keys", &self.inner.keys.current().keys.len())
            .field("refreshes", &self.inner.keys.refreshes())
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticator {
    /// Checks `config` and loads the key set. A set at a URL is fetched
    /// before this returns, so it blocks for up to the outgoing timeout:
    /// call it at start, or from async code through `spawn_blocking`.
    pub fn new(config: JwtConfig) -> Result<Self, HttpError> {
        let first_issuer = config
            .issuers
            .first()
            .ok_or_else(|| HttpError::Config("a JWT issuer is required".into()))?;
        if config.audiences.is_empty() {
            return Err(HttpError::Config("a JWT audience is required".into()));
        }
        let mut validations = Vec::new();
        for name in &config.algorithms {
            let alg = Algorithm::from_str(name)
                .ok()
                .filter(|alg| alg.family() != AlgorithmFamily::Hmac)
                .ok_or_else(|| {
                    HttpError::Config(format!(
                        "JWT algorithm {name:?} is not accepted; use asymmetric ones (RS256, ES256, EdDSA...)"
                    ))
                })?;
            let mut validation = Validation::new(alg);
            validation.leeway = config.leeway.as_secs();
            validation.validate_nbf = true;
            validation.set_issuer(&config.issuers);
            validation.set_audience(&config.audiences);
            let mut required = vec!["iss", "aud"];
            if config.require_exp {
                required.push("exp");
            }
            validation.set_required_spec_claims(&required);
            validations.push((name.clone(), alg, validation));
        }
        if validations.is_empty() {
            return Err(HttpError::Config("no JWT algorithm is accepted".into()));
        }
        let keys = KeyStore::load(&config.jwks, first_issuer, config.refresh)?;
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                validations,
                principal_claim: config.principal_claim,
                domain: config.domain,
            }),
        })
    }

    /// The claims of `token` if it is valid, or why not, in the
    /// reference's `code: description` form.
    fn validate(&self, token: &str) -> Result<Map<String, Json>, String> {
        let header = peek_header(token)?;
        let alg_name = header
            .get("alg")
            .and_then(Json::as_str)
            .ok_or("missing_algorithm: Missing 'alg' value in header")?;
        let (_, alg, validation) = self
            .inner
            .validations
            .iter()
            .find(|(name, _, _)| name == alg_name)
            .ok_or_else(|| {
                format!("unsupported_algorithm: Algorithm '{alg_name}' is not allowed")
            })?;
        let kid = match header.get("kid") {
            None => None,
            Some(Json::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err("invalid_header_value: 'kid' is not a string".into()),
        };
        let keys = self.inner.keys.current();
        if let Some(kid) = kid
            && !keys.has_kid(kid)
        {
            // The provider may have rotated in a key we have not seen yet.
            self.inner.keys.request_refresh();
            return Err(format!("invalid_key_id: No key for kid: '{kid}'"));
        }
        let mut verified_by_none = false;
        for key in keys.candidates(kid, *alg, alg_name) {
            match jsonwebtoken::decode::<Map<String, Json>>(token, &key.decoding, validation) {
                Ok(data) => return Ok(data.claims),
                Err(err) if *err.kind() == ErrorKind::InvalidSignature => verified_by_none = true,
                Err(err) => return Err(describe(err.kind())),
            }
        }
        Err(if verified_by_none {
            "bad_signature: The signature does not verify".into()
        } else {
            format!("invalid_key_type: No key in the set is for algorithm '{alg_name}'")
        })
    }
}

impl Authenticate for JwtAuthenticator {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        let token = bearer_token(request).ok_or_else(|| {
            AuthRejection::new("Missing or invalid Authorization header").with_challenge("Bearer")
        })?;
        let claims = self.validate(token).map_err(|reason| {
            let message = format!("Invalid JWT: {reason}");
            let challenge = invalid_token_challenge(&message);
            AuthRejection::new(message).with_challenge(challenge)
        })?;
        let principal = match claims.get(&self.inner.principal_claim) {
            None => String::new(),
            Some(Json::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        Ok(AuthContext {
            domain: Some(self.inner.domain.clone()),
            authenticated: true,
            principal: Some(principal),
            claims,
        })
    }
}

/// The JOSE header of `token`, read before its signature is checked, only
/// to pick the algorithm and key.
fn peek_header(token: &str) -> Result<Map<String, Json>, String> {
    const MALFORMED: &str = "decode_error: Invalid JSON Web Signature";
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(MALFORMED.into());
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| MALFORMED)?;
    serde_json::from_slice(&bytes).map_err(|_| MALFORMED.into())
}

/// The reference's wording for why a signed token was refused.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "expired_token: The token is expired".into(),
        ErrorKind::ImmatureSignature => "invalid_claim: The token is not yet valid".into(),
        ErrorKind::InvalidIssuer => "invalid_claim: Invalid claim: 'iss'".into(),
        ErrorKind::InvalidAudience => "invalid_claim: Invalid claim: 'aud'".into(),
        ErrorKind::InvalidClaimFormat(claim) => format!("invalid_claim: Invalid claim: '{claim}'"),
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("missing_claim: Missing claim: '{claim}'")
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            "invalid_key_type: The key does not fit the algorithm".into()
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "decode_error: Invalid JSON Web Signature".into(),
        other => format!("decode_error: {other:?}"),
    }
}
