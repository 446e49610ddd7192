//! Client certificates as identity: the certificate a TLS-terminating
//! proxy forwards in a header, or the one our own TLS verified.
//!
//! Neither variant checks the certificate chain: whoever terminated TLS
//! did. They only read an identity out of the certificate, by fingerprint
//! or by subject, as the reference's `mtls_authenticate_*` factories.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::AttributeTypeAndValue;

use super::{AuthContext, AuthRejection, Authenticate};

/// The DER encoding of the client's leaf certificate, as the server's own
/// TLS verified it during the handshake.
///
/// The server puts it in the extensions of every request of a connection
/// whose client presented a certificate; [`mtls_native`] reads it. Unlike a
/// forwarded header, a client cannot forge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Bytes);

/// The hash a certificate fingerprint is taken with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FingerprintAlgorithm {
    /// SHA-256, the default.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// A client certificate, parsed, for a custom [`CertificateIdentity`].
pub struct ClientCertificate<'a> {
    der: &'a [u8],
    parsed: X509Certificate<'a>,
}

impl std::fmt::Debug for ClientCertificate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject_dn())
            .field("serial", &self.serial_hex())
            .finish_non_exhaustive()
    }
}

impl<'a> ClientCertificate<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, String> {
        let (_, parsed) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        Ok(Self { der, parsed })
    }

    /// The certificate's DER encoding.
    pub fn der(&self) -> &[u8] {
        self.der
    }

    /// The certificate as `x509-parser` reads it, for anything else.
    pub fn x509(&self) -> &X509Certificate<'a> {
        &self.parsed
    }

    /// The fingerprint of the DER encoding: lowercase hex, no colons.
    pub fn fingerprint(&self, algorithm: FingerprintAlgorithm) -> String {
        let digest = match algorithm {
            FingerprintAlgorithm::Sha256 => Sha256::digest(self.der).to_vec(),
            FingerprintAlgorithm::Sha384 => Sha384::digest(self.der).to_vec(),
            FingerprintAlgorithm::Sha512 => Sha512::digest(self.der).to_vec(),
        };
        digest.iter().fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
    }

    /// The first common name of the subject.
    pub fn subject_cn(&self) -> Option<String> {
        self.parsed
            .subject()
            .iter_common_name()
            .next()
            .map(attribute_text)
    }

    /// The subject as an RFC 4514 string, most specific name first
    /// (`CN=alice,O=Example`).
    pub fn subject_dn(&self) -> String {
        let rdns: Vec<_> = self.parsed.subject().iter_rdn().collect();
        rdns.iter()
            .rev()
            .map(|rdn| {
                rdn.iter()
                    .map(|attribute| {
                        format!(
                            "{}={}",
                            attribute_name(attribute),
                            escape_dn_value(&attribute_text(attribute))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The serial number in lowercase hex, without leading zeros.
    pub fn serial_hex(&self) -> String {
        format!("{:x}", self.parsed.tbs_certificate.serial)
    }

    /// The end of the validity period, as `YYYY-MM-DDTHH:MM:SS+00:00`.
    pub fn not_valid_after(&self) -> String {
        let at = self.parsed.validity().not_after.to_datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }

    fn check_validity_period(&self) -> Result<(), AuthRejection> {
        let now = x509_parser::time::ASN1Time::now().timestamp();
        let validity = self.parsed.validity();
        if now < validity.not_before.timestamp() {
            return Err(AuthRejection::new("Certificate is not yet valid"));
        }
        if now > validity.not_after.timestamp() {
            return Err(AuthRejection::new("Certificate has expired"));
        }
        Ok(())
    }
}

/// The text of a name attribute; a value that is not a string is given as
/// `#` and the hex of its encoding, as RFC 4514 does.
fn attribute_text(attribute: &AttributeTypeAndValue<'_>) -> String {
    match attribute.as_str() {
        Ok(text) => text.to_owned(),
        Err(_) => attribute
            .as_slice()
            .iter()
            .fold("#".to_owned(), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            }),
    }
}

/// RFC 4514's short name of an attribute type, or its dotted OID.
fn attribute_name(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type().to_id_string();
    let short = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return oid,
    };
    short.to_owned()
}

/// Escapes an attribute value for an RFC 4514 string.
fn escape_dn_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '"' | '+' | ',' | ';' | '<' | '>' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            _ => escaped.push(c),
        }
    }
    if escaped.starts_with(['#', ' ']) {
        escaped.insert(0, '\\');
    }
    if escaped.ends_with(' ') && !escaped.ends_with("\\ ") {
        escaped.pop();
        escaped.push_str("\\ ");
    }
    escaped
}

/// A custom way to name the owner of a certificate.
type CustomIdentity =
    Arc<dyn Fn(&ClientCertificate<'_>) -> Result<AuthContext, AuthRejection> + Send + Sync>;

/// How a certificate names its owner.
#[derive(Clone)]
pub enum CertificateIdentity {
    /// Known certificates by fingerprint, each with the context it stands
    /// for; others are refused.
    Fingerprint {
        /// The hash the fingerprints are taken with.
        algorithm: FingerprintAlgorithm,
        /// Contexts by fingerprint, in lowercase hex without colons.
        contexts: HashMap<String, AuthContext>,
    },
    /// The subject's common name is the principal, and the claims hold
    /// `subject_dn` (RFC 4514), `serial` (hex) and `not_valid_after`.
    Subject {
        /// The domain of accepted callers (`mtls` by default).
        domain: String,
        /// When set, only these common names are accepted. `None` accepts
        /// any certificate the TLS terminator accepted: a decision to make
        /// on purpose.
        allowed: Option<HashSet<String>>,
    },
    /// A function of the certificate.
    Custom(CustomIdentity),
}

impl std::fmt::Debug for CertificateIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fingerprint {
                algorithm,
                contexts,
            } => f
                .debug_struct("Fingerprint")
                .field("algorithm", algorithm)
                .field("known", &contexts.len())
                .finish(),
            Self::Subject { domain, allowed } => f
                .debug_struct("Subject")
                .field("domain", domain)
                .field("allowed", allowed)
                .finish(),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl CertificateIdentity {
    /// Known SHA-256 fingerprints (hex, colons and case ignored) and the
    /// contexts they stand for.
    pub fn fingerprints(contexts: impl IntoIterator<Item = (String, AuthContext)>) -> Self {
        Self::Fingerprint {
            algorithm: FingerprintAlgorithm::Sha256,
            contexts: contexts
                .into_iter()
                .map(|(fingerprint, context)| {
                    (fingerprint.replace(':', "").to_ascii_lowercase(), context)
                })
                .collect(),
        }
    }

    /// Any certificate, named by its subject's common name in the domain
    /// `mtls`.
    pub fn subject() -> Self {
        Self::Subject {
            domain: "mtls".into(),
            allowed: None,
        }
    }

    /// Certificates whose subject's common name is one of `names`.
    pub fn subject_in<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self::Subject {
            domain: "mtls".into(),
            allowed: Some(names.into_iter().map(Into::into).collect()),
        }
    }

    /// `identify` names the owner of each certificate, or refuses it.
    pub fn custom<F>(identify: F) -> Self
    where
        F: Fn(&ClientCertificate<'_>) -> Result<AuthContext, AuthRejection> + Send + Sync + 'static,
    {
        Self::Custom(Arc::new(identify))
    }

    fn identify(&self, certificate: &ClientCertificate<'_>) -> Result<AuthContext, AuthRejection> {
        match self {
            Self::Fingerprint {
                algorithm,
                contexts,
            } => {
                let fingerprint = certificate.fingerprint(*algorithm);
                contexts.get(&fingerprint).cloned().ok_or_else(|| {
                    AuthRejection::new(format!("Unknown certificate fingerprint: {fingerprint}"))
                })
            }
            Self::Subject { domain, allowed } => {
                let cn = certificate.subject_cn().unwrap_or_default();
                if allowed
                    .as_ref()
                    .is_some_and(|allowed| !allowed.contains(&cn))
                {
                    return Err(AuthRejection::new(format!(
                        "Subject CN '{cn}' not in allowed subjects"
                    )));
                }
                let mut claims = Map::new();
                claims.insert("subject_dn".into(), Json::String(certificate.subject_dn()));
                claims.insert("serial".into(), Json::String(certificate.serial_hex()));
                claims.insert(
                    "not_valid_after".into(),
                    Json::String(certificate.not_valid_after()),
                );
                Ok(AuthContext {
                    domain: Some(domain.clone()),
                    authenticated: true,
                    principal: Some(cn),
                    claims,
                })
            }
            Self::Custom(identify) => identify(certificate),
        }
    }
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
enum Source {
    /// A URL-encoded PEM certificate in this request header.
    Header(String),
    /// [`PeerCertificate`] in the request extensions.
    Native,
}

/// Authenticates by client certificate; made by [`mtls_header`] or
/// [`mtls_native`].
#[derive(Debug, Clone)]
pub struct ClientCertificateAuth {
    source: Source,
    identity: CertificateIdentity,
    check_expiry: bool,
}

/// Authenticates by the URL-encoded PEM certificate a TLS-terminating proxy
/// puts in `header` (`X-SSL-Client-Cert` from nginx's
/// `$ssl_client_escaped_cert`, `X-Amzn-Mtls-Clientcert` from AWS ALB).
///
/// **The proxy must remove any copy of `header` the client sent** before
/// adding its own: this authenticator trusts the header as it finds it, so
/// a client that reaches the server with its own header chooses who it is.
/// Use it only behind such a proxy, never on a port clients reach directly.
pub fn mtls_header(
    header: impl Into<String>,
    identity: CertificateIdentity,
) -> ClientCertificateAuth {
    ClientCertificateAuth {
        source: Source::Header(header.into()),
        identity,
        check_expiry: false,
    }
}

/// Authenticates by the certificate the client presented to the server's
/// own TLS ([`PeerCertificate`]), verified against the client CA during
/// the handshake. Headers play no part, so none can be forged.
pub fn mtls_native(identity: CertificateIdentity) -> ClientCertificateAuth {
    ClientCertificateAuth {
        source: Source::Native,
        identity,
        check_expiry: false,
    }
}

impl ClientCertificateAuth {
    /// Also refuses certificates outside their validity period (off by
    /// default, as in the reference: the TLS terminator checks it).
    pub fn check_expiry(mut self, check: bool) -> Self {
        self.check_expiry = check;
        self
    }

    fn with_certificate<T>(
        &self,
        request: &Parts,
        then: impl FnOnce(&ClientCertificate<'_>) -> Result<T, AuthRejection>,
    ) -> Result<T, AuthRejection> {
        match &self.source {
            Source::Header(name) => {
                let raw = request
                    .headers
                    .get(name.as_str())
                    .and_then(|value| value.to_str().ok())
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| AuthRejection::new(format!("Missing {name} header")))?;
                let pem = percent_decode_str(raw).decode_utf8_lossy();
                if !pem.starts_with("-----BEGIN CERTIFICATE-----") {
                    return Err(AuthRejection::new("Header value is not a PEM certificate"));
                }
                let failed =
                    |e: String| AuthRejection::new(format!("Failed to parse PEM certificate: {e}"));
                let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                    .map_err(|e| failed(e.to_string()))?;
                then(&ClientCertificate::parse(&block.contents).map_err(failed)?)
            }
            Source::Native => {
                let PeerCertificate(der) = request
                    .extensions
                    .get::<PeerCertificate>()
                    .ok_or_else(|| AuthRejection::new("No client certificate presented"))?;
                let certificate = ClientCertificate::parse(der).map_err(|e| {
                    AuthRejection::new(format!("Failed to parse client certificate: {e}"))
                })?;
                then(&certificate)
            }
        }
    }
}

impl Authenticate for ClientCertificateAuth {
    fn authenticate(&self, request: &Parts) -> Result<AuthContext, AuthRejection> {
        self.with_certificate(request, |certificate| {
            if self.check_expiry {
                certificate.check_validity_period()?;
            }
            self.identity.identify(certificate)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::escape_dn_value;

    #[test]
    fn dn_values_are_escaped_as_rfc_4514_says() {
        assert_eq!(escape_dn_value("alice"), "alice");
        assert_eq!(escape_dn_value("Doe, John"), "Doe\\, John");
        assert_eq!(
            escape_dn_value("a+b;c<d>e\"f\\"),
            "a\\+b\\;c\\<d\\>e\\\"f\\\\"
        );
        assert_eq!(escape_dn_value("#hash"), "\\#hash");
        assert_eq!(escape_dn_value(" both "), "\\ both\\ ");
        assert_eq!(escape_dn_value("nul\0"), "nul\\00");
    }
}
