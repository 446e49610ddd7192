//! RFC 9728 discovery: the protected-resource metadata document, served
//! before authentication, and its URL in the challenge of every `401`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::{BoxFuture, take};
use crate::auth::{OAuthResourceMetadata, metadata_challenge, well_known_paths};
use crate::body::ResponseBody;

#[derive(Debug, Clone)]
pub(crate) struct ResourceMetadataLayer {
    paths: Arc<[String]>,
    document: Bytes,
    /// The `Bearer` parameters every `401` gains.
    challenge: Arc<str>,
}

impl ResourceMetadataLayer {
    pub(crate) fn new(metadata: &OAuthResourceMetadata, prefix: &str) -> Self {
        Self {
            paths: well_known_paths(prefix).into(),
            document: Bytes::from(metadata.to_json().to_string()),
            challenge: metadata_challenge(metadata, prefix).into(),
        }
    }
}

impl<S> Layer<S> for ResourceMetadataLayer {
    type Service = ResourceMetadataService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResourceMetadataService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ResourceMetadataService<S> {
    inner: S,
    layer: ResourceMetadataLayer,
}

impl<S, B> Service<Request<B>> for ResourceMetadataService<S>
where
    S: Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let reading = matches!(*request.method(), Method::GET | Method::HEAD);
        if reading && self.layer.paths.iter().any(|p| request.uri().path() == p) {
            let mut response = Response::new(ResponseBody::full(self.layer.document.clone()));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            return Box::pin(async move { Ok(response) });
        }
        let challenge = self.layer.challenge.clone();
        let mut inner = take(&mut self.inner);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                let existing = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|value| value.to_str().ok());
                let merged = merge_challenge(existing, &challenge);
                if let Ok(value) = HeaderValue::from_str(&merged) {
                    response.headers_mut().insert(WWW_AUTHENTICATE, value);
                }
            }
            Ok(response)
        })
    }
}

/// `existing` with `params` added to its `Bearer` challenge, right after
/// the scheme (where parameters may always go); a `Bearer` challenge of
/// its own goes first when there is none.
fn merge_challenge(existing: Option<&str>, params: &str) -> String {
    let Some(existing) = existing.filter(|e| !e.trim().is_empty()) else {
        return format!("Bearer {params}");
    };
    match bearer_scheme_end(existing) {
        Some(end) => {
            let rest = &existing[end..];
            let separator = if rest.trim().is_empty() || rest.trim_start().starts_with(',') {
                ""
            } else {
                ","
            };
            format!("{} {params}{separator}{rest}", &existing[..end])
        }
        None => format!("Bearer {params}, {existing}"),
    }
}

/// Where the `Bearer` scheme token of a challenge list ends: a list
/// element, outside quotes, that starts with the scheme name followed by
/// a space, a comma or the end.
fn bearer_scheme_end(challenges: &str) -> Option<usize> {
    let bytes = challenges.as_bytes();
    let mut quoted = false;
    let mut element_start = true;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if element_start && byte != b' ' && byte != b',' {
            element_start = false;
            let end = at + "bearer".len();
            if end <= bytes.len()
                && bytes[at..end].eq_ignore_ascii_case(b"bearer")
                && matches!(bytes.get(end), None | Some(b' ' | b','))
            {
                return Some(end);
            }
        }
        match byte {
            b'"' => quoted = !quoted,
            b'\\' if quoted => at += 1,
            b',' if !quoted => element_start = true,
            _ => {}
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::merge_challenge;

    #[test]
    fn the_metadata_joins_the_bearer_challenge() {
        let params = r#"resource_metadata="https://a/.well-known/oauth-protected-resource""#;
        let merged = |existing| merge_challenge(existing, params);
        assert_eq!(merged(None), format!("Bearer {params}"));
        assert_eq!(merged(Some("Bearer")), format!("Bearer {params}"));
        assert_eq!(
            merged(Some(
                r#"Bearer error="invalid_token", error_description="a, Bearer b""#
            )),
            format!(r#"Bearer {params}, error="invalid_token", error_description="a, Bearer b""#)
        );
        assert_eq!(
            merged(Some(r#"Basic realm="x", Bearer"#)),
            format!(r#"Basic realm="x", Bearer {params}"#)
        );
        assert_eq!(
            merged(Some("Bearer, Basic")),
            format!("Bearer {params}, Basic")
        );
        assert_eq!(
            merged(Some(r#"Basic realm="Bearer""#)),
            format!(r#"Bearer {params}, Basic realm="Bearer""#)
        );
    }
}
