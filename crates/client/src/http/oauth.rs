//! OAuth discovery (RFC 9728): where a server says its tokens come from,
//! read from its protected-resource metadata document or from the
//! `WWW-Authenticate` challenge of a `401`.

use http::header::{ACCEPT, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
pub use vgirpc_fetch::OAuthResourceMetadata;
use vgirpc_fetch::RESOURCE_METADATA_PATH;

use super::HttpOptions;
use super::core::{Failure, HttpCore, http_error};
use super::payload::Payload;
use crate::ClientError;

/// Fetches the metadata of the server at `base_url` from
/// `{base_url}/.well-known/oauth-protected-resource{prefix}`, the prefix
/// being `options`'. `None` when the server publishes none (`404`).
pub async fn oauth_metadata(
    base_url: &str,
    options: &HttpOptions,
) -> Result<Option<OAuthResourceMetadata>, ClientError> {
    let url = format!(
        "{}{RESOURCE_METADATA_PATH}{}",
        base_url.trim_end_matches('/'),
        options.prefix
    );
    match get(&url, options).await {
        Err(ClientError::Http { status: 404, .. }) => Ok(None),
        other => other.map(Some),
    }
}

/// Fetches the metadata document at `url`, typically the
/// `resource_metadata` of a `401`'s challenge ([`BearerChallenge`]).
pub async fn fetch_oauth_metadata(
    url: &str,
    options: &HttpOptions,
) -> Result<OAuthResourceMetadata, ClientError> {
    get(url, options).await
}

/// [`oauth_metadata`] for code without a runtime of its own.
pub fn oauth_metadata_blocking(
    base_url: &str,
    options: &HttpOptions,
) -> Result<Option<OAuthResourceMetadata>, ClientError> {
    run(oauth_metadata(base_url, options))
}

/// [`fetch_oauth_metadata`] for code without a runtime of its own.
pub fn fetch_oauth_metadata_blocking(
    url: &str,
    options: &HttpOptions,
) -> Result<OAuthResourceMetadata, ClientError> {
    run(fetch_oauth_metadata(url, options))
}

/// Runs `future` on a one-thread runtime in a thread of its own, which
/// works inside another runtime's threads as well as outside any.
fn run<T: Send>(
    future: impl Future<Output = Result<T, ClientError>> + Send,
) -> Result<T, ClientError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(ClientError::Io)?
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

async fn get(url: &str, options: &HttpOptions) -> Result<OAuthResourceMetadata, ClientError> {
    let core = HttpCore::new(url, options.clone())?;
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let reply = core
        .send_once(Method::GET, url, &headers, Payload::default())
        .await
        .map_err(|failure| match failure {
            Failure::TimedOut(after) => ClientError::Timeout(after),
            other => ClientError::Io(std::io::Error::other(format!("{url}: {other}"))),
        })?;
    if reply.status != StatusCode::OK {
        return Err(http_error(&reply));
    }
    OAuthResourceMetadata::from_json(&reply.body)
        .map_err(|e| ClientError::Protocol(format!("OAuth metadata: {e}")))
}

/// The parameters of a `Bearer` challenge that lead to a login: the
/// metadata URL (RFC 9728) and the reference's client extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// `resource_metadata`: where the metadata document is.
    pub resource_metadata: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `client_secret`.
    pub client_secret: Option<String>,
    /// `use_id_token_as_bearer="true"`.
    pub use_id_token_as_bearer: bool,
    /// `device_code_client_id`.
    pub device_code_client_id: Option<String>,
    /// `device_code_client_secret`.
    pub device_code_client_secret: Option<String>,
}

impl BearerChallenge {
    /// Reads the parameters out of a `WWW-Authenticate` value; those it
    /// does not carry stay empty.
    pub fn parse(www_authenticate: &str) -> Self {
        let param = |name: &str| quoted_param(www_authenticate, name);
        Self {
            resource_metadata: param("resource_metadata"),
            client_id: param("client_id"),
            client_secret: param("client_secret"),
            use_id_token_as_bearer: param("use_id_token_as_bearer").as_deref() == Some("true"),
            device_code_client_id: param("device_code_client_id"),
            device_code_client_secret: param("device_code_client_secret"),
        }
    }
}

/// The `resource_metadata` URL of a `WWW-Authenticate` value, if it has one.
pub fn parse_resource_metadata_url(www_authenticate: &str) -> Option<String> {
    quoted_param(www_authenticate, "resource_metadata")
}

/// The non-empty quoted value of the parameter `name` (a whole name, not
/// the end of a longer one).
fn quoted_param(header: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(found) = header[from..].find(&needle) {
        let start = from + found;
        let whole_name = header[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let value_start = start + needle.len();
        if whole_name {
            let value = &header[value_start..];
            let end = value.find('"')?;
            return (end > 0).then(|| value[..end].to_owned());
        }
        from = value_start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_name_the_metadata_and_the_client() {
        let header = r#"Bearer resource_metadata="https://a/.well-known/oauth-protected-resource/vgi", device_code_client_id="dev", client_id="web", use_id_token_as_bearer="true""#;
        let challenge = BearerChallenge::parse(header);
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some("https://a/.well-known/oauth-protected-resource/vgi")
        );
        assert_eq!(challenge.client_id.as_deref(), Some("web"));
        assert_eq!(challenge.device_code_client_id.as_deref(), Some("dev"));
        assert!(challenge.use_id_token_as_bearer);
        assert_eq!(challenge.client_secret, None);
        assert_eq!(parse_resource_metadata_url("Bearer"), None);
        assert_eq!(
            parse_resource_metadata_url(r#"Bearer error="invalid_token""#),
            None
        );
    }
}
