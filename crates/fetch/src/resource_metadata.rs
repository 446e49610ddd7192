//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document a server
//! publishes to say which authorization server issues its tokens, and the
//! client reads before logging in. One type for both sides, so what the
//! server writes is by construction what the client reads.

use http::Uri;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

/// Where the document is served, before the server's prefix.
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The metadata a server publishes at
/// `/.well-known/oauth-protected-resource{prefix}`, as the reference's
/// `OAuthResourceMetadata`.
///
/// Fields at their defaults are left out of the document, and a field
/// that is missing or `null` reads as its default, so the two directions
/// agree. The `client_id`, `client_secret`, `use_id_token_as_bearer` and
/// `device_code_*` fields are the reference's extensions, not RFC 9728:
/// a server also puts them into its `401` challenge, so a client can
/// start a login from the refusal alone. A `client_secret` published
/// there is public: set one only for providers that treat it so (public
/// PKCE clients).
///
/// ```
/// use vgirpc_fetch::OAuthResourceMetadata;
///
/// let metadata = OAuthResourceMetadata::new("https://api.example/vgi", ["https://idp"]);
/// let document = metadata.to_json().to_string();
/// assert_eq!(
///     document,
///     r#"{"authorization_servers":["https://idp"],"resource":"https://api.example/vgi"}"#
/// );
/// assert_eq!(OAuthResourceMetadata::from_json(document.as_bytes())?, metadata);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthResourceMetadata {
    /// The canonical URL of the server (required); its scheme and host
    /// also make the document's URL in the challenge.
    pub resource: String,
    /// Issuer URLs of the authorization servers (required, at least one).
    pub authorization_servers: Vec<String>,
    /// The scopes the server understands.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub scopes_supported: Vec<String>,
    /// How tokens may be sent (`["header"]` when the server does not say).
    #[serde(
        default = "header_only",
        skip_serializing_if = "is_header_only",
        deserialize_with = "null_as_header_only"
    )]
    pub bearer_methods_supported: Vec<String>,
    /// JWS algorithms of signed responses.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub resource_signing_alg_values_supported: Vec<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Developer documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// The privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// The terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// The OAuth client id to log in with (URL-safe characters only, as
    /// it also travels in the challenge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The OAuth client secret to log in with (URL-safe characters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Clients should send the OpenID Connect `id_token` as the bearer
    /// token rather than the access token.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_default"
    )]
    pub use_id_token_as_bearer: bool,
    /// The client id for the device code flow (URL-safe characters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_code_client_id: Option<String>,
    /// The client secret for the device code flow (URL-safe characters
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
            bearer_methods_supported: header_only(),
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

    /// Reads a metadata document; `resource` and `authorization_servers`
    /// are required, fields it does not know are ignored.
    pub fn from_json(document: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(document)
    }

    /// The JSON document.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("strings, lists and a flag always make JSON")
    }

    /// `scheme://authority` of the resource, when it is an absolute
    /// http(s) URL.
    pub fn origin(&self) -> Option<String> {
        let uri: Uri = self.resource.parse().ok()?;
        let scheme = uri
            .scheme_str()
            .filter(|s| matches!(*s, "http" | "https"))?;
        Some(format!("{scheme}://{}", uri.authority()?))
    }

    /// The document's URL for a server under `prefix`, on the resource's
    /// origin.
    pub fn document_url(&self, prefix: &str) -> String {
        let origin = self.origin().unwrap_or_default();
        let prefix = if prefix == "/" { "" } else { prefix };
        format!("{origin}{RESOURCE_METADATA_PATH}{prefix}")
    }
}

fn header_only() -> Vec<String> {
    vec!["header".into()]
}

fn is_header_only(methods: &[String]) -> bool {
    methods == ["header"]
}

fn is_false(flag: &bool) -> bool {
    !flag
}

/// Servers that write every field, unset ones as `null`, mean the default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

fn null_as_header_only<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::deserialize(deserializer)?.unwrap_or_else(header_only))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_stay_out_of_the_document() {
        let metadata = OAuthResourceMetadata::new("https://api.example:8443/vgi", ["https://idp"]);
        assert_eq!(
            metadata.to_json(),
            json!({
                "resource": "https://api.example:8443/vgi",
                "authorization_servers": ["https://idp"],
            })
        );
        assert_eq!(
            metadata.document_url("/"),
            "https://api.example:8443/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata.document_url("/vgi"),
            "https://api.example:8443/.well-known/oauth-protected-resource/vgi"
        );
        assert_eq!(
            OAuthResourceMetadata::new("api.example", ["x"]).origin(),
            None
        );
    }

    #[test]
    fn every_field_set_goes_into_the_document_and_back() {
        let metadata = OAuthResourceMetadata {
            scopes_supported: vec!["read".into()],
            bearer_methods_supported: Vec::new(),
            resource_signing_alg_values_supported: vec!["RS256".into()],
            resource_name: Some("name".into()),
            resource_documentation: Some("https://docs".into()),
            resource_policy_uri: Some("https://policy".into()),
            resource_tos_uri: Some("https://tos".into()),
            client_id: Some("web".into()),
            client_secret: Some("shh".into()),
            use_id_token_as_bearer: true,
            device_code_client_id: Some("dev".into()),
            device_code_client_secret: Some("dev-shh".into()),
            ..OAuthResourceMetadata::new("https://a", ["https://idp"])
        };
        let document = metadata.to_json();
        assert_eq!(document["bearer_methods_supported"], json!([]));
        assert_eq!(document["use_id_token_as_bearer"], json!(true));
        let read = OAuthResourceMetadata::from_json(document.to_string().as_bytes()).unwrap();
        assert_eq!(read, metadata);
    }

    #[test]
    fn documents_need_resource_and_servers() {
        let full = br#"{"resource":"https://a","authorization_servers":["https://idp"],"scopes_supported":["read"],"token_endpoint":"https://a/token"}"#;
        let metadata = OAuthResourceMetadata::from_json(full).unwrap();
        assert_eq!(metadata.scopes_supported, ["read"]);
        assert_eq!(metadata.bearer_methods_supported, ["header"]);
        assert!(OAuthResourceMetadata::from_json(br#"{"resource":"https://a"}"#).is_err());
        assert!(OAuthResourceMetadata::from_json(br#"{"authorization_servers":[]}"#).is_err());
    }

    #[test]
    fn null_fields_read_as_their_defaults() {
        let document = br#"{
            "resource": "https://a",
            "authorization_servers": ["https://idp"],
            "scopes_supported": null,
            "bearer_methods_supported": null,
            "resource_signing_alg_values_supported": null,
            "resource_name": null,
            "client_id": null,
            "use_id_token_as_bearer": null
        }"#;
        assert_eq!(
            OAuthResourceMetadata::from_json(document).unwrap(),
            OAuthResourceMetadata::new("https://a", ["https://idp"])
        );
    }
}
