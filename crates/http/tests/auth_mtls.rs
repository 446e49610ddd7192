//! Client certificates as identity, through a real server: a PEM forwarded
//! by a proxy (by fingerprint, by subject), the certificate our own TLS
//! verified, and Envoy's `x-forwarded-client-cert`.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "auth_support"]
mod auth_support {
    pub(crate) mod caller;
    pub(crate) mod caller_claims;
    pub(crate) mod caller_domain;
    pub(crate) mod refusal;
    pub(crate) mod request;
    pub(crate) mod start;
    pub(crate) mod who;
}
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use auth_support::caller::{caller, whoami};
use auth_support::refusal::refusal;
use auth_support::start::{server, start};
use auth_support::who::serve;
use bytes::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber, date_time_ymd};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower::util::MapRequestLayer;
use vgirpc_http::{
    AuthContext, AuthRejection, CertificateIdentity, HttpConfig, PeerCertificate, RequestBody,
    XfccSelect, mtls_header, mtls_native, mtls_xfcc,
};

/// A self-signed certificate for `cn` of Example (US), valid from
/// `from` to `until` (years), with serial 01:02:ab.
struct Cert {
    pem: String,
    der: Vec<u8>,
}

fn cert_valid(cn: &str, from: i32, until: i32) -> Cert {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "US");
    name.push(DnType::OrganizationName, "Example, Inc.");
    name.push(DnType::CommonName, cn);
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x02, 0xab]));
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(until, 1, 2);
    let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
    Cert {
        pem: cert.pem(),
        der: cert.der().to_vec(),
    }
}

fn cert(cn: &str) -> Cert {
    cert_valid(cn, 2020, 2040)
}

/// The PEM as nginx's `$ssl_client_escaped_cert` sends it.
fn escaped(cert: &Cert) -> String {
    utf8_percent_encode(&cert.pem, NON_ALPHANUMERIC).to_string()
}

fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const HEADER: &str = "X-SSL-Client-Cert";

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_certificate_is_known_by_its_fingerprint() {
    let (alice, stranger) = (cert("alice"), cert("stranger"));
    // Written the way tools print them: upper case, colons.
    let printed = sha256_hex(&alice.der)
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8(pair.to_vec()).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let identity = CertificateIdentity::fingerprints([(
        printed,
        AuthContext::authenticated("mtls", "alice-by-fp").with_claim("team", "core"),
    )]);
    let addr = start(HttpConfig::new().with_authenticate(mtls_header(HEADER, identity))).await;

    let who = caller(&whoami(addr, &[(HEADER, &escaped(&alice))]).await);
    assert_eq!((who.domain(), who.principal()), ("mtls", "alice-by-fp"));
    assert_eq!(who.claims()["team"], "core");

    let reply = whoami(addr, &[(HEADER, &escaped(&stranger))]).await;
    assert_eq!(
        refusal(&reply),
        format!(
            "Unknown certificate fingerprint: {}",
            sha256_hex(&stranger.der)
        )
    );
    assert_eq!(reply.header("www-authenticate"), None);

    assert_eq!(
        refusal(&whoami(addr, &[]).await),
        "Missing X-SSL-Client-Cert header"
    );
    assert_eq!(
        refusal(&whoami(addr, &[(HEADER, "hello")]).await),
        "Header value is not a PEM certificate"
    );
    let broken = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A";
    let message = refusal(&whoami(addr, &[(HEADER, broken)]).await);
    assert!(
        message.starts_with("Failed to parse PEM certificate: "),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_certificate_is_named_by_its_subject() {
    let addr = start(
        HttpConfig::new().with_authenticate(mtls_header(HEADER, CertificateIdentity::subject())),
    )
    .await;
    let who = caller(&whoami(addr, &[(HEADER, &escaped(&cert("alice")))]).await);
    assert_eq!((who.domain(), who.principal()), ("mtls", "alice"));
    assert_eq!(
        who.claims(),
        serde_json::json!({
            "subject_dn": "CN=alice,O=Example\\, Inc.,C=US",
            "serial": "102ab",
            "not_valid_after": "2040-01-02T00:00:00+00:00",
        })
    );

    // Only listed names, and only within the validity period when asked.
    let listed = mtls_header(HEADER, CertificateIdentity::subject_in(["alice"])).check_expiry(true);
    let addr = start(HttpConfig::new().with_authenticate(listed)).await;
    assert_eq!(
        caller(&whoami(addr, &[(HEADER, &escaped(&cert("alice")))]).await).principal(),
        "alice"
    );
    let cases = [
        (
            cert("mallory"),
            "Subject CN 'mallory' not in allowed subjects",
        ),
        (cert_valid("alice", 2000, 2001), "Certificate has expired"),
        (
            cert_valid("alice", 2090, 2091),
            "Certificate is not yet valid",
        ),
    ];
    for (cert, message) in cases {
        assert_eq!(
            refusal(&whoami(addr, &[(HEADER, &escaped(&cert))]).await),
            message
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_native_certificate_comes_from_tls_and_a_header_cannot_forge_it() {
    let alice = cert("alice");
    // What the TLS server does for a connection whose client presented a
    // verified certificate.
    let der = Bytes::from(alice.der.clone());
    let presented = MapRequestLayer::new(move |mut request: http::Request<RequestBody>| {
        request
            .extensions_mut()
            .insert(PeerCertificate(der.clone()));
        request
    });
    let native = || mtls_native(CertificateIdentity::subject());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve(
        listener,
        server(HttpConfig::new().with_authenticate(native())).layer(presented),
    );
    assert_eq!(caller(&whoami(addr, &[]).await).principal(), "alice");

    // Proxy mode off: a client sending the proxy's header gets nowhere.
    let plain = start(HttpConfig::new().with_authenticate(native())).await;
    let forged = whoami(plain, &[(HEADER, &escaped(&alice))]).await;
    assert_eq!(refusal(&forged), "No client certificate presented");
    let forged = whoami(
        plain,
        &[("x-forwarded-client-cert", "Subject=\"CN=alice\"")],
    )
    .await;
    assert_eq!(refusal(&forged), "No client certificate presented");
}

#[tokio::test(flavor = "multi_thread")]
async fn xfcc_names_the_selected_element() {
    let header = concat!(
        r#"By=spiffe://mesh/api;Hash=aa11;Subject="CN=alice,OU=eng \"core\",O=Ex";"#,
        r#"URI=spiffe%3A%2F%2Fmesh%2Falice;DNS=alice.mesh;DNS=alice.local,"#,
        r#"By=spiffe://mesh/edge;Hash=bb22;Subject="CN=edge-proxy""#,
    );
    let addr = start(HttpConfig::new().with_authenticate(mtls_xfcc())).await;
    let who = caller(&whoami(addr, &[("x-forwarded-client-cert", header)]).await);
    assert_eq!((who.domain(), who.principal()), ("mtls", "alice"));
    assert_eq!(
        who.claims(),
        serde_json::json!({
            "by": "spiffe://mesh/api",
            "hash": "aa11",
            "subject": "CN=alice,OU=eng \"core\",O=Ex",
            "uri": "spiffe://mesh/alice",
            "dns": ["alice.mesh", "alice.local"],
        })
    );
    assert_eq!(
        refusal(&whoami(addr, &[]).await),
        "Missing x-forwarded-client-cert header"
    );
    assert_eq!(
        refusal(&whoami(addr, &[("x-forwarded-client-cert", " , ")]).await),
        "Empty x-forwarded-client-cert header"
    );

    let last = mtls_xfcc().select(XfccSelect::Last).domain("mesh");
    let addr = start(HttpConfig::new().with_authenticate(last)).await;
    let who = caller(&whoami(addr, &[("x-forwarded-client-cert", header)]).await);
    assert_eq!((who.domain(), who.principal()), ("mesh", "edge-proxy"));

    let by_uri = mtls_xfcc().validate(|element| match element.uri.as_deref() {
        Some(uri) if uri.starts_with("spiffe://mesh/") => {
            Ok(AuthContext::authenticated("spiffe", uri))
        }
        _ => Err(AuthRejection::new("not from the mesh")),
    });
    let addr = start(HttpConfig::new().with_authenticate(by_uri)).await;
    let who = caller(&whoami(addr, &[("x-forwarded-client-cert", header)]).await);
    assert_eq!(who.principal(), "spiffe://mesh/alice");
    let outsider = whoami(addr, &[("x-forwarded-client-cert", "Subject=\"CN=x\"")]).await;
    assert_eq!(refusal(&outsider), "not from the mesh");
}
