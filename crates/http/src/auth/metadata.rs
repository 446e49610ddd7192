//! OAuth 2.0 Protected Resource Metadata (RFC 9728) on the server: which
//! metadata may be published, the paths the document is served at, and
//! the `401` challenge that points to it. The document itself is
//! [`OAuthResourceMetadata`], shared with the client.

use http::request::Parts;
pub use vgirpc_fetch::OAuthResourceMetadata;
use vgirpc_fetch::RESOURCE_METADATA_PATH;

use super::{AuthContext, AuthRejection, Authenticate};
use crate::error::HttpError;

/// Refuses metadata a server cannot publish: the document would not say
/// where tokens come from, or its URL or the challenge could not be made.
fn check(metadata: &OAuthResourceMetadata) -> Result<(), HttpError> {
    let invalid = |message: String| Err(HttpError::Config(message));
    if metadata.resource.is_empty() {
        return invalid("OAuthResourceMetadata.resource must not be empty".into());
    }
    if metadata.authorization_servers.is_empty() {
        return invalid(
            "OAuthResourceMetadata.authorization_servers must contain at least one entry".into(),
        );
    }
    if metadata.origin().is_none() {
        return invalid(format!(
            "OAuthResourceMetadata.resource must be an absolute http(s) URL, got {:?}",
            metadata.resource
        ));
    }
    for (name, value) in [
        ("client_id", &metadata.client_id),
        ("client_secret", &metadata.client_secret),
        ("device_code_client_id", &metadata.device_code_client_id),
        (
            "device_code_client_secret",
            &metadata.device_code_client_secret,
        ),
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

fn url_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
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
    let mut paths = vec![RESOURCE_METADATA_PATH.to_owned()];
    if !prefix.is_empty() && prefix != "/" {
        paths.push(format!("{RESOURCE_METADATA_PATH}{prefix}"));
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
    check(&metadata)?;
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
    fn defaults_stay_out_of_the_challenge() {
        let metadata = OAuthResourceMetadata::new("https://api.example:8443/vgi", ["https://idp"]);
        check(&metadata).unwrap();
        assert_eq!(
            metadata_challenge(&metadata, "/vgi"),
            "resource_metadata=\"https://api.example:8443/.well-known/oauth-protected-resource/vgi\""
        );
        assert_eq!(well_known_paths(""), [RESOURCE_METADATA_PATH]);
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
            assert!(check(&metadata).is_err(), "{metadata:?}");
        }
    }
}
