//! Envoy's `x-forwarded-client-cert` header: the client certificate a
//! proxy verified, described in `key=value` pairs rather than forwarded.

use std::sync::Arc;

use http::request::Parts;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value as Json};

use super::{AuthContext, AuthRejection, Authenticate};

/// The header Envoy describes client certificates in.
const XFCC: &str = "x-forwarded-client-cert";

/// One element of an `x-forwarded-client-cert` header: one proxy hop's
/// view of a client certificate. Keys the header may carry besides these
/// are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XfccElement {
    /// `Hash`: the SHA-256 of the certificate, hex.
    pub hash: Option<String>,
    /// `Cert`: the whole certificate, PEM (URL-decoded).
    pub cert: Option<String>,
    /// `Subject`: the certificate's subject, as Envoy writes it.
    pub subject: Option<String>,
    /// `URI`: a URI subject alternative name (URL-decoded).
    pub uri: Option<String>,
    /// `DNS`: the DNS subject alternative names, one per `DNS` key.
    pub dns: Vec<String>,
    /// `By`: the proxy's own identity (URL-decoded).
    pub by: Option<String>,
}

/// Reads an `x-forwarded-client-cert` value: elements separated by commas,
/// each `key=value` pairs separated by semicolons, values optionally
/// double-quoted with `\`-escapes inside the quotes; `Cert`, `URI` and `By`
/// URL-encoded. Keys are case-insensitive; a repeated key other than `DNS`
/// keeps its last value.
pub fn parse_xfcc(value: &str) -> Vec<XfccElement> {
    let mut elements = Vec::new();
    for raw in split_outside_quotes(value, ',') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let mut element = XfccElement::default();
        for pair in split_outside_quotes(raw, ';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let mut value = value.trim().to_owned();
            if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
                value = unescape(&value[1..value.len() - 1]);
            }
            if matches!(key.as_str(), "cert" | "uri" | "by") {
                value = percent_decode_str(&value).decode_utf8_lossy().into_owned();
            }
            match key.as_str() {
                "hash" => element.hash = Some(value),
                "cert" => element.cert = Some(value),
                "subject" => element.subject = Some(value),
                "uri" => element.uri = Some(value),
                "dns" => element.dns.push(value),
                "by" => element.by = Some(value),
                _ => {}
            }
        }
        elements.push(element);
    }
    elements
}

/// `text` split at `delimiter`s that are outside double quotes; inside
/// quotes a backslash keeps the next character from ending anything.
fn split_outside_quotes(text: &str, delimiter: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                chars.next();
            }
            _ if c == delimiter && !quoted => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A quoted value with its backslash escapes resolved.
fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => out.push(escaped),
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

/// The `CN` of a subject such as `CN=alice,OU=eng`: the text after `CN=`
/// in the first comma-separated part (commas escaped with `\` do not
/// separate) that starts with it, in any case.
fn common_name(subject: &str) -> String {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut previous = None;
    for (at, c) in subject.char_indices() {
        if c == ',' && previous != Some('\\') {
            parts.push(&subject[start..at]);
            start = at + 1;
        }
        previous = Some(c);
    }
    parts.push(&subject[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .find(|part| part.len() >= 3 && part[..3].eq_ignore_ascii_case("CN="))
        .map(|part| part[3..].to_owned())
        .unwrap_or_default()
}

/// Which element of several names the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XfccSelect {
    /// The first: the original client (the default).
    #[default]
    First,
    /// The last: the nearest proxy.
    Last,
}

/// Names the owner of an element, or refuses it.
type Validate = Arc<dyn Fn(&XfccElement) -> Result<AuthContext, AuthRejection> + Send + Sync>;

/// Authenticates by Envoy's `x-forwarded-client-cert`; made by
/// [`mtls_xfcc`].
#[derive(Clone)]
pub struct XfccAuth {
    domain: String,
    select: XfccSelect,
    validate: Option<Validate>,
}

impl std::fmt::Debug for XfccAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XfccAuth")
            .field("domain", &self.domain)
            .field("select", &self.select)
            .field("validate", &self.validate.is_some())
            .finish()
    }
}

/// Authenticates by the `x-forwarded-client-cert` header Envoy (or another
/// proxy speaking its format) sets after verifying a client certificate.
/// By default the principal is the `CN` of the selected element's
/// `Subject` in the domain `mtls`, and the claims hold its `hash`,
/// `subject`, `uri`, `dns` and `by`.
///
/// **The proxy must remove any `x-forwarded-client-cert` the client sent**
/// (Envoy's `forward_client_cert_details: SANITIZE_SET`): this
/// authenticator trusts the header as it finds it, so a client that
/// reaches the server with its own header chooses who it is.
pub fn mtls_xfcc() -> XfccAuth {
    XfccAuth {
        domain: "mtls".into(),
        select: XfccSelect::First,
        validate: None,
    }
}

impl XfccAuth {
    /// The domain of accepted callers (`mtls` by default).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// Which element names the client when there are several.
    pub fn select(mut self, select: XfccSelect) -> Self {
        self.select = select;
        self
    }

    /// `validate` names the owner of the selected element, or refuses it,
    /// instead of the subject's `CN`.
    pub fn validate<F>(mut self, validate: F) -> Self
    where
        F: Fn(&XfccElement) -> Result<AuthContext, AuthRejection> + Send + Sync + 'static,
    {
        self.validate = Some(Arc::new(validate));
        self
    }
}

impl Authenticate for XfccAuth {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        // Several header lines are one list, as if joined with commas.
        let values: Vec<&str> = request
            .headers
            .get_all(XFCC)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let value = values.join(",");
        if value.is_empty() {
            return Err(AuthRejection::new("Missing x-forwarded-client-cert header"));
        }
        let elements = parse_xfcc(&value);
        let element = match self.select {
            XfccSelect::First => elements.first(),
            XfccSelect::Last => elements.last(),
        }
        .ok_or_else(|| AuthRejection::new("Empty x-forwarded-client-cert header"))?;
        if let Some(validate) = &self.validate {
            return validate(element);
        }
        let mut claims = Map::new();
        let mut put = |name: &str, value: &Option<String>| {
            if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
                claims.insert(name.into(), Json::String(value.clone()));
            }
        };
        put("hash", &element.hash);
        put("subject", &element.subject);
        put("uri", &element.uri);
        put("by", &element.by);
        if !element.dns.is_empty() {
            claims.insert(
                "dns".into(),
                Json::Array(element.dns.iter().cloned().map(Json::String).collect()),
            );
        }
        Ok(AuthContext {
            domain: Some(self.domain.clone()),
            authenticated: true,
            principal: Some(
                element
                    .subject
                    .as_deref()
                    .map(common_name)
                    .unwrap_or_default(),
            ),
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_pairs_quotes_and_escapes() {
        let header = concat!(
            r#"By=spiffe://mesh/front;Hash=abc123;Subject="CN=alice,OU=eng \"core\";O=Ex";"#,
            r#"URI=spiffe%3A%2F%2Fmesh%2Falice;DNS=a.example;dns=b.example,"#,
            r#" Hash=def;Subject="CN=proxy""#,
        );
        let elements = parse_xfcc(header);
        assert_eq!(elements.len(), 2);
        let first = &elements[0];
        assert_eq!(first.by.as_deref(), Some("spiffe://mesh/front"));
        assert_eq!(first.hash.as_deref(), Some("abc123"));
        assert_eq!(
            first.subject.as_deref(),
            Some("CN=alice,OU=eng \"core\";O=Ex")
        );
        assert_eq!(first.uri.as_deref(), Some("spiffe://mesh/alice"));
        assert_eq!(first.dns, ["a.example", "b.example"]);
        assert_eq!(elements[1].subject.as_deref(), Some("CN=proxy"));
        assert!(parse_xfcc(" , ").is_empty());
    }

    #[test]
    fn common_names_follow_the_reference() {
        assert_eq!(common_name("CN=alice,OU=eng"), "alice");
        assert_eq!(common_name("OU=eng, cn=bob"), "bob");
        assert_eq!(common_name(r"CN=Doe\, John,O=Ex"), r"Doe\, John");
        assert_eq!(common_name("O=Ex"), "");
    }
}
