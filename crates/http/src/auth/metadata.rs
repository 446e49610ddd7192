//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that
//! tells a client which authorization server issues tokens for this
//! server, and the `401` challenge that points to it.

use http::Uri;
use http::request::Parts;
use serde_json::{Map, Value as Json};

use super::{AuthContext, AuthRejection, Authenticate};
use crate::error::HttpError;

/// Where the document is served, before the server's prefix.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata a server publishes at
/// `/.well-known/oauth-protected-resource{prefix}`, as the reference's
/// `OAuthResourceMetadata`.
///
/// Fields left at their defaults are left out of the document. The
/// `client_id`, `client_secret`, `use_id_token_as_bearer` and
/// `device_code_*` fields are the reference's extensions, not RFC 9728:
/// they also go into the `401` challenge, so a client can start a login
/// from the refusal alone. A `client_secret` published there is public:
/// set one only for providers that treat it so (public PKCE clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthResourceMetadata {
    /// The canonical URL of this server (required); its scheme and host
    /// also make the document's URL in the challenge.
    pub resource: String,
    /// Issuer URLs of the authorization servers (at least one).
    pub authorization_servers: Vec<String>,
    /// The scopes this server understands.
    pub scopes_supported: Vec<String>,
    /// How tokens may be sent (`["header"]` by default).
    pub bearer_methods_supported: Vec<String>,
    /// JWS algorithms of signed responses.
    pub resource_signing_alg_values_supported: Vec<String>,
    /// A human-readable name.
    pub resource_name: Option<String>,
    /// Developer documentation.
    pub resource_documentation: Option<String>,
    /// The privacy policy.
    pub resource_policy_uri: Option<String>,
    /// The terms of service.
    pub resource_tos_uri: Option<String>,
    /// The OAuth client id clients should use (URL-safe characters only).
    pub client_id: Option<String>,
    /// The OAuth client secret clients should use (URL-safe characters
    /// only).
    pub client_secret: Option<String>,
    /// Clients should send the OpenID Connect `id_token` as the bearer
    /// token rather than the access token.
    pub use_id_token_as_bearer: bool,
    /// The client id for the device code flow (URL-safe characters only).
    pub device_code_client_id: Option<String>,
    /// The client secret for the device code flow (URL-safe characters
    /// only).
    pub device_code_client_secret: Option<String>,
}

impl OAuthResourceMetadata {
    /// Metadata for `resource`, whose tokens `authorization_servers` issue;
    /// set the other fields directly.
    pub fn new<S: Into<String>>(
        resource: impl Into<String>,
        authorization_servers: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: authorization_servers.into_iter().map(Into::into).collect(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".into()],
            resource_signing_alg_values_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            client_id: None,
            client_secret: None,
            use_id_token_as_bearer: false,
            device_code_client_id: None,
            device_code_client_secret: None,
        }
    }

    fn check(&self) -> Result<(), HttpError> {
        let invalid = |message: String| Err(HttpError::Config(message));
        if self.resource.is_empty() {
            return invalid("OAuthResourceMetadata.resource must not be empty".into());
        }
        if self.authorization_servers.is_empty() {
            return invalid(
                "OAuthResourceMetadata.authorization_servers must contain at least one entry"
                    .into(),
            );
        }
        if origin(&self.resource).is_none() {
            return invalid(format!(
                "OAuthResourceMetadata.resource must be an absolute http(s) URL, got {:?}",
                self.resource
            ));
        }
        for (name, value) in [
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("device_code_client_id", &self.device_code_client_id),
            ("device_code_client_secret", &self.device_code_client_secret),
        ] {
            if let Some(value) = value
                && (value.is_empty() || !value.bytes().all(url_safe))
            {
                return invalid(format!(
                    "OAuthResourceMetadata.{name} must contain only URL-safe characters \
                     (alphanumeric, hyphen, underscore, period, tilde), got: {value:?}"
                ));
            }
        }
        Ok(())
    }

    /// The JSON document.
    pub fn to_json(&self) -> Json {
        let mut document = Map::new();
        let strings = |values: &[String]| Json::from(values.to_vec());
        document.insert("resource".into(), Json::from(self.resource.clone()));
        document.insert(
            "authorization_servers".into(),
            strings(&self.authorization_servers),
        );
        let lists = [
            ("scopes_supported", &self.scopes_supported),
            (
                "resource_signing_alg_values_supported",
                &self.resource_signing_alg_values_supported,
            ),
        ];
        for (name, values) in lists {
            if !values.is_empty() {
                document.insert(name.into(), strings(values));
            }
        }
        if self.bearer_methods_supported != ["header"] {
            document.insert(
                "bearer_methods_supported".into(),
                strings(&self.bearer_methods_supported),
            );
        }
        let optional = [
            ("resource_name", &self.resource_name),
            ("resource_documentation", &self.resource_documentation),
            ("resource_policy_uri", &self.resource_policy_uri),
            ("resource_tos_uri", &self.resource_tos_uri),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                document.insert(name.into(), Json::from(value.clone()));
            }
        }
        if self.use_id_token_as_bearer {
            document.insert("use_id_token_as_bearer".into(), Json::Bool(true));
        }
        for (name, value) in [
            ("device_code_client_id", &self.device_code_client_id),
            ("device_code_client_secret", &self.device_code_client_secret),
        ] {
            if let Some(value) = value {
                document.insert(name.into(), Json::from(value.clone()));
            }
        }
        Json::Object(document)
    }

    /// The document's URL for a server under `prefix`.
    pub fn document_url(&self, prefix: &str) -> String {
        let origin = origin(&self.resource).unwrap_or_default();
        let prefix = if prefix == "/" { "" } else { prefix };
        format!("{origin}{WELL_KNOWN}{prefix}")
    }
}

fn url_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// `scheme://authority` of an absolute http(s) URL.
fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri
        .scheme_str()
        .filter(|s| matches!(*s, "http" | "https"))?;
    Some(format!("{scheme}://{}", uri.authority()?))
}

/// The parameters the metadata adds to the `Bearer` challenge of every
/// `401`: `resource_metadata` and the reference's client extensions.
pub(crate) fn metadata_challenge(metadata: &OAuthResourceMetadata, prefix: &str) -> String {
    let mut params = vec![format!(
        "resource_metadata=\"{}\"",
        metadata.document_url(prefix)
    )];
    let extensions = [
        ("client_id", metadata.client_id.as_deref()),
        ("client_secret", metadata.client_secret.as_deref()),
        (
            "use_id_token_as_bearer",
            metadata.use_id_token_as_bearer.then_some("true"),
        ),
        (
            "device_code_client_id",
            metadata.device_code_client_id.as_deref(),
        ),
        (
            "device_code_client_secret",
            metadata.device_code_client_secret.as_deref(),
        ),
    ];
    for (name, value) in extensions {
        if let Some(value) = value {
            params.push(format!("{name}=\"{value}\""));
        }
    }
    params.join(", ")
}

/// The paths the document is served at: the bare well-known path, and
/// with the prefix appended when there is one.
pub(crate) fn well_known_paths(prefix: &str) -> Vec<String> {
    let mut paths = vec![WELL_KNOWN.to_owned()];
    if !prefix.is_empty() && prefix != "/" {
        paths.push(format!("{WELL_KNOWN}{prefix}"));
    }
    paths
}

/// An authenticator whose server publishes [`OAuthResourceMetadata`]; made
/// by [`with_resource_metadata`].
#[derive(Debug, Clone)]
pub struct WithResourceMetadata<A> {
    inner: A,
    metadata: OAuthResourceMetadata,
}

/// `authenticator`, and the metadata its server publishes: the server
/// answers `GET /.well-known/oauth-protected-resource{prefix}` (and the
/// bare well-known path) with `metadata` as JSON, to anyone, and adds
/// `resource_metadata="<that URL>"` (with the client extensions) to the
/// `Bearer` challenge of every `401`, adding a `Bearer` challenge where
/// the refusal had none.
///
/// Fails when the metadata is incomplete: no resource, no authorization
/// server, a resource that is not an absolute http(s) URL, or client
/// fields with other than URL-safe characters.
pub fn with_resource_metadata<A: Authenticate>(
    authenticator: A,
    metadata: OAuthResourceMetadata,
) -> Result<WithResourceMetadata<A>, HttpError> {
    metadata.check()?;
    Ok(WithResourceMetadata {
        inner: authenticator,
        metadata,
    })
}

impl<A: Authenticate> Authenticate for WithResourceMetadata<A> {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        self.inner.authenticate(request)
    }

    fn resource_metadata(&self) -> Option<&OAuthResourceMetadata> {
        Some(&self.metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_stay_out_of_the_document_and_the_challenge() {
        let metadata = OAuthResourceMetadata::new("https://api.example:8443/vgi", ["https://idp"]);
        metadata.check().unwrap();
        assert_eq!(
            metadata.to_json(),
            serde_json::json!({
                "resource": "https://api.example:8443/vgi",
                "authorization_servers": ["https://idp"],
            })
        );
        assert_eq!(
            metadata_challenge(&metadata, "/vgi"),
            "resource_metadata=\"https://api.example:8443/.well-known/oauth-protected-resource/vgi\""
        );
        assert_eq!(
            metadata.document_url("/"),
            "https://api.example:8443/.well-known/oauth-protected-resource"
        );
        assert_eq!(well_known_paths(""), [WELL_KNOWN]);
    }

    #[test]
    fn incomplete_metadata_is_refused() {
        let base = || OAuthResourceMetadata::new("https://api.example", ["https://idp"]);
        let cases = [
            OAuthResourceMetadata::new("", ["https://idp"]),
            OAuthResourceMetadata::new("https://api.example", Vec::<String>::new()),
            OAuthResourceMetadata::new("api.example", ["https://idp"]),
            OAuthResourceMetadata {
                client_id: Some("has space".into()),
                ..base()
            },
            OAuthResourceMetadata {
                device_code_client_secret: Some("a\"b".into()),
                ..base()
            },
        ];
        for metadata in cases {
            assert!(metadata.check().is_err(), "{metadata:?}");
        }
    }
}
