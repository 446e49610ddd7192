//! Keys that sign JWTs, made on the spot, and the JWKS documents naming
//! them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value as Json, json};

use super::ec_key::ec_key;

/// A signing key and its public JWK.
pub(crate) struct Signer {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    pub(crate) key: EncodingKey,
    pub(crate) jwk: Json,
}

impl Signer {
    /// An RSA key (RS256).
    pub(crate) fn rsa(kid: &str) -> Self {
        let private = <rsa::PrivateKey as rsa::Generate>::generate();
        let der = private.to_pkcs1_der().unwrap();
        Self {
            kid: kid.into(),
            alg: Algorithm::RS256,
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(private.n_bytes()),
                "e": URL_SAFE_NO_PAD.encode(private.e_bytes()),
            }),
        }
    }

    /// A P-256 key (ES256).
    pub(crate) fn ec(kid: &str) -> Self {
        let (pair, jwk) = ec_key(kid);
        Self {
            kid: kid.into(),
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk,
        }
    }

    /// An Ed25519 key (EdDSA).
    pub(crate) fn ed(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "OKP", "kid": kid, "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw()),
            }),
        }
    }

    /// `claims` signed with this key, the header naming its id.
    pub(crate) fn sign(&self, claims: &Json) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// A JWKS document of `signers`' public keys.
pub(crate) fn jwks(signers: &[&Signer]) -> Json {
    json!({ "keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() })
}
