//! The short-lived cookie that carries a browser login across its trip to
//! the authorization server, and the PKCE values it keeps (RFC 7636).
//!
//! The cookie is the reference's version 4 layout, signed with HMAC-SHA256:
//!
//! ```text
//! version u8 (4) | created_at u64 LE | verifier_len u16 LE | code_verifier
//!   | state_len u16 LE | state | url_len u16 LE | original_url
//!   | return_to_len u16 LE | return_to | HMAC-SHA256 (32 bytes)
//! ```
//!
//! base64url-encoded. The signing key is derived from the flow's secret
//! for this use alone, so nothing else signed with that secret can pass
//! for a session cookie, nor a session cookie for anything else.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The layout version this server writes and accepts.
pub(crate) const VERSION: u8 = 4;

/// How long a login may take between the redirect to the authorization
/// server and its callback: 10 minutes, as in the reference.
pub(crate) const MAX_AGE_SECS: u64 = 600;

const MAC_LEN: usize = 32;

/// Version, timestamp, four lengths and the MAC: a cookie with every
/// field empty.
const MIN_LEN: usize = 1 + 8 + 4 * 2 + MAC_LEN;

/// What sets this key apart from every other key drawn from the secret.
const KEY_INFO: &[u8] = b"vgi-rpc oauth-pkce session cookie";

/// The key session cookies are signed with.
#[derive(Clone)]
pub(crate) struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// The key for cookies of every worker that shares `secret`.
    pub(crate) fn derive(secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, secret)
            .expand(KEY_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(key)
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// A login in progress, as the cookie carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) code_verifier: String,
    pub(crate) state: String,
    /// Where the browser goes back to on this server.
    pub(crate) original_url: String,
    /// An external frontend that receives the token instead (empty for
    /// none).
    pub(crate) return_to: String,
}

/// Why a session cookie was refused; for logs only, the browser is told
/// that its session expired or is invalid whatever the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("session cookie is not base64url")]
    Malformed,
    #[error("session cookie too short")]
    TooShort,
    #[error("session cookie signature mismatch")]
    BadSignature,
    #[error("unexpected session cookie version {0}")]
    Version(u8),
    #[error("session cookie expired (created at {created_at}, now {now})")]
    Expired { created_at: u64, now: u64 },
    #[error("session cookie fields overrun it")]
    Truncated,
}

impl Session {
    /// The signed cookie value, dated `created_at` (seconds since the
    /// epoch).
    pub(crate) fn seal(&self, key: &SessionKey, created_at: u64) -> String {
        let mut payload = Vec::with_capacity(
            MIN_LEN
                + self.code_verifier.len()
                + self.state.len()
                + self.original_url.len()
                + self.return_to.len(),
        );
        payload.push(VERSION);
        payload.extend_from_slice(&created_at.to_le_bytes());
        for field in [
            &self.code_verifier,
            &self.state,
            &self.original_url,
            &self.return_to,
        ] {
            // The URLs are cut to 2 KiB characters before they get here.
            let len = u16::try_from(field.len()).expect("session fields are a few KiB at most");
            payload.extend_from_slice(&len.to_le_bytes());
            payload.extend_from_slice(field.as_bytes());
        }
        let mut mac = key.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// Opens a cookie sealed with `key` no more than [`MAX_AGE_SECS`]
    /// before `now`.
    pub(crate) fn open(cookie: &str, key: &SessionKey, now: u64) -> Result<Self, SessionError> {
        // Cookies written with padding (as the reference does) open too.
        let raw = URL_SAFE_NO_PAD
            .decode(cookie.trim_end_matches('='))
            .map_err(|_| SessionError::Malformed)?;
        if raw.len() < MIN_LEN {
            return Err(SessionError::TooShort);
        }
        let (payload, tag) = raw.split_at(raw.len() - MAC_LEN);
        // Nothing in the payload is looked at before the signature holds.
        let mut mac = key.mac();
        mac.update(payload);
        mac.verify_slice(tag)
            .map_err(|_| SessionError::BadSignature)?;
        if payload[0] != VERSION {
            return Err(SessionError::Version(payload[0]));
        }
        let created_at = u64::from_le_bytes(payload[1..9].try_into().expect("8 bytes"));
        let age = now.checked_sub(created_at);
        if age.is_none_or(|age| age > MAX_AGE_SECS) {
            return Err(SessionError::Expired { created_at, now });
        }
        let mut rest = &payload[9..];
        let mut field = || -> Result<String, SessionError> {
            let (len, tail) = rest.split_at_checked(2).ok_or(SessionError::Truncated)?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            let (bytes, tail) = tail.split_at_checked(len).ok_or(SessionError::Truncated)?;
            rest = tail;
            String::from_utf8(bytes.to_vec()).map_err(|_| SessionError::Truncated)
        };
        Ok(Self {
            code_verifier: field()?,
            state: field()?,
            original_url: field()?,
            return_to: field()?,
        })
    }
}

/// `bytes` random bytes, base64url without padding (Python's
/// `secrets.token_urlsafe`).
fn random_urlsafe(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::fill(buffer.as_mut_slice());
    URL_SAFE_NO_PAD.encode(buffer)
}

/// A fresh code verifier: 43 characters of the unreserved set, 256 bits of
/// entropy (RFC 7636 §4.1).
pub(crate) fn code_verifier() -> String {
    random_urlsafe(32)
}

/// The S256 challenge of `verifier` (RFC 7636 §4.2).
pub(crate) fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh `state` value, which ties the callback to the browser that
/// started the login.
pub(crate) fn state_nonce() -> String {
    random_urlsafe(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn session(return_to: &str) -> Session {
        Session {
            code_verifier: code_verifier(),
            state: state_nonce(),
            original_url: "/vgi/describe?x=1".into(),
            return_to: return_to.into(),
        }
    }

    #[test]
    fn pkce_values_have_the_rfc_shape() {
        let verifier = code_verifier();
        assert_eq!(verifier.len(), 43);
        assert!(
            verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(verifier, code_verifier());
        assert_eq!(state_nonce().len(), 32);
        // RFC 7636, appendix B.
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_cookie_opens_with_its_key_within_its_age() {
        let key = SessionKey::derive(b"secret");
        for return_to in ["", "https://cupola.query-farm.services/app"] {
            let session = session(return_to);
            let cookie = session.seal(&key, NOW);
            assert_eq!(Session::open(&cookie, &key, NOW + 600), Ok(session.clone()));
            let padded = format!("{cookie}{}", "=".repeat((4 - cookie.len() % 4) % 4));
            assert_eq!(Session::open(&padded, &key, NOW), Ok(session));
        }
    }

    #[test]
    fn tampered_foreign_old_and_expired_cookies_are_refused() {
        let key = SessionKey::derive(b"secret");
        let cookie = session("").seal(&key, NOW);

        let mut raw = URL_SAFE_NO_PAD.decode(&cookie).unwrap();
        raw[12] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            Session::open(&tampered, &key, NOW),
            Err(SessionError::BadSignature)
        );
        assert_eq!(
            Session::open(&cookie, &SessionKey::derive(b"other"), NOW),
            Err(SessionError::BadSignature)
        );
        assert!(matches!(
            Session::open(&cookie, &key, NOW + 601),
            Err(SessionError::Expired { .. })
        ));
        assert!(matches!(
            Session::open(&cookie, &key, NOW - 1),
            Err(SessionError::Expired { .. })
        ));
        assert_eq!(
            Session::open(&cookie[..40], &key, NOW),
            Err(SessionError::TooShort)
        );
        assert_eq!(
            Session::open("not base64!", &key, NOW),
            Err(SessionError::Malformed)
        );

        // A version-3 cookie signed with the right key still fails.
        let mut payload = URL_SAFE_NO_PAD.decode(&cookie).unwrap();
        payload.truncate(payload.len() - MAC_LEN);
        payload[0] = 3;
        let mut mac = key.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(
            Session::open(&URL_SAFE_NO_PAD.encode(&payload), &key, NOW),
            Err(SessionError::Version(3))
        );
    }
}
