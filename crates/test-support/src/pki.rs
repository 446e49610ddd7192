//! Certificates made at test time: a CA, a server certificate for
//! `localhost` and `127.0.0.1`, and client certificates, all in PEM, so TLS
//! tests never depend on files or services outside the machine.
//!
//! ```
//! let pki = vgirpc_test_support::pki::Pki::generate();
//! let alice = pki.client("alice");
//! assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(alice.key_pem.contains("PRIVATE KEY"));
//! ```

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// A CA and the server certificate it signed.
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The server's certificate, for `localhost` and `127.0.0.1`.
    pub server: Identity,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// The paths [`Pki::write_to`] wrote.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// A client certificate for `client`.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl Pki {
    /// A new CA named "vgi-rpc test CA" and a server certificate it signed.
    pub fn generate() -> Self {
        Self::generate_named("vgi-rpc test CA")
    }

    /// A new CA with common name `name`, and a server certificate it signed.
    pub fn generate_named(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let server = sign(
            &issuer,
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        Self {
            ca_pem: issuer.pem(),
            server,
            issuer,
        }
    }

    /// A client certificate with common name `name` (and `name` as a DNS
    /// subject alternative name), signed by this CA.
    pub fn client(&self, name: &str) -> Identity {
        sign(
            &self.issuer,
            &[name],
            name,
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// Writes the CA, the server's certificate and key, and a client
    /// certificate for `client` into `dir`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        std::fs::create_dir_all(dir)?;
        let client = self.client("client");
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        std::fs::write(&files.ca, &self.ca_pem)?;
        std::fs::write(&files.server_cert, &self.server.cert_pem)?;
        std::fs::write(&files.server_key, &self.server.key_pem)?;
        std::fs::write(&files.client_cert, &client.cert_pem)?;
        std::fs::write(&files.client_key, &client.key_pem)?;
        Ok(files)
    }
}

fn sign(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    // Strict verifiers (Python's ssl since 3.13) insist on it.
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("certificate");
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
