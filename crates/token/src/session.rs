//! Session tokens for HTTP sticky sessions (`VGI-Session` headers).
//!
//! A session token names a live session in one worker's memory; unlike a
//! stream token it carries no state. Layout (base64url without padding):
//! `version (1 byte, = 1) || nonce (24 bytes) || ciphertext+tag`, the
//! ciphertext being XChaCha20-Poly1305 over
//!
//! ```text
//! created_at u64 LE | server_id_len u8 | server_id | session_id [12] | expires_at u64 LE
//! ```
//!
//! with the same identity-bound associated data as stream tokens, so a
//! token presented by another principal fails authentication.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Payload};

use crate::{Identity, NONCE_LEN, Segments, TAG_LEN, TokenError, TokenKey};

/// The session token format this crate writes and accepts.
pub const SESSION_TOKEN_VERSION: u8 = 1;

/// Bytes in a session id.
pub const SESSION_ID_LEN: usize = 12;

/// Header-safe, and tolerant of clients that restore the padding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a session token says, in the clear once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// Seconds since the Unix epoch when the token was sealed.
    pub created_at: u64,
    /// The worker that holds the session (at most 255 bytes).
    pub server_id: String,
    /// The session's id in that worker's registry.
    pub session_id: [u8; SESSION_ID_LEN],
    /// Seconds since the Unix epoch after which the session is gone.
    pub expires_at: u64,
}

impl SessionToken {
    /// Seals the token for `identity` and returns the base64url text.
    ///
    /// Fails only for a server id longer than 255 bytes, which the layout
    /// cannot carry.
    pub fn seal(&self, key: &TokenKey, identity: &Identity) -> Result<String, TokenError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        Ok(BASE64URL.encode(self.seal_with_nonce(key, identity, &nonce)?))
    }

    fn seal_with_nonce(
        &self,
        key: &TokenKey,
        identity: &Identity,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Vec<u8>, TokenError> {
        let plaintext = self.to_plaintext()?;
        let aad = identity.aad();
        let ciphertext = key
            .session_cipher()
            .encrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut token = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        token.push(SESSION_TOKEN_VERSION);
        token.extend_from_slice(nonce);
        token.extend_from_slice(&ciphertext);
        Ok(token)
    }

    /// Opens a token sealed for `identity` and checks that it has not
    /// expired by `now` (seconds since the Unix epoch).
    ///
    /// Whether the token names this worker and a live session is for the
    /// caller to check: the token only vouches for what it says.
    pub fn open(
        token: &str,
        key: &TokenKey,
        identity: &Identity,
        now: u64,
    ) -> Result<Self, TokenError> {
        let raw = BASE64URL
            .decode(token.trim().as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        let (&version, rest) = raw.split_first().ok_or(TokenError::Malformed)?;
        if version != SESSION_TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion { found: version });
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = identity.aad();
        let plaintext = key
            .session_cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| TokenError::VerificationFailed)?;
        let token = Self::from_plaintext(&plaintext)?;
        if token.expires_at < now {
            return Err(TokenError::Expired {
                age_secs: now.saturating_sub(token.created_at),
                ttl_secs: token.expires_at.saturating_sub(token.created_at),
            });
        }
        Ok(token)
    }

    fn to_plaintext(&self) -> Result<Vec<u8>, TokenError> {
        let server_id = self.server_id.as_bytes();
        let len = u8::try_from(server_id.len()).map_err(|_| TokenError::ServerIdTooLong {
            len: server_id.len(),
        })?;
        let mut out = Vec::with_capacity(8 + 1 + server_id.len() + SESSION_ID_LEN + 8);
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.push(len);
        out.extend_from_slice(server_id);
        out.extend_from_slice(&self.session_id);
        out.extend_from_slice(&self.expires_at.to_le_bytes());
        Ok(out)
    }

    fn from_plaintext(plaintext: &[u8]) -> Result<Self, TokenError> {
        let mut reader = Segments { rest: plaintext };
        let created_at = u64::from_le_bytes(reader.take(8)?.try_into().expect("took 8 bytes"));
        let server_id_len = usize::from(reader.take(1)?[0]);
        let server_id = String::from_utf8(reader.take(server_id_len)?.to_vec())
            .map_err(|_| TokenError::Malformed)?;
        let session_id = reader
            .take(SESSION_ID_LEN)?
            .try_into()
            .expect("took SESSION_ID_LEN bytes");
        let expires_at = u64::from_le_bytes(reader.take(8)?.try_into().expect("took 8 bytes"));
        if !reader.rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Self {
            created_at,
            server_id,
            session_id,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SessionToken {
        SessionToken {
            created_at: 1_700_000_000,
            server_id: "a1b2c3d4e5f6".into(),
            session_id: [9; SESSION_ID_LEN],
            expires_at: 1_700_000_300,
        }
    }

    #[test]
    fn layout_matches_the_specification() {
        let t = token();
        let plaintext = t.to_plaintext().unwrap();
        assert_eq!(&plaintext[..8], &1_700_000_000u64.to_le_bytes());
        assert_eq!(plaintext[8], 12);
        assert_eq!(&plaintext[9..21], b"a1b2c3d4e5f6");
        assert_eq!(&plaintext[21..33], &[9; SESSION_ID_LEN]);
        assert_eq!(&plaintext[33..], &1_700_000_300u64.to_le_bytes());

        let raw = t
            .seal_with_nonce(&TokenKey::new(b"k"), &Identity::Anonymous, &[7; NONCE_LEN])
            .unwrap();
        assert_eq!(raw[0], SESSION_TOKEN_VERSION);
        assert_eq!(&raw[1..25], &[7; NONCE_LEN]);
        assert_eq!(raw.len(), 1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    }

    #[test]
    fn round_trips_unpadded_and_padded() {
        let key = TokenKey::new(b"k");
        let sealed = token().seal(&key, &Identity::Anonymous).unwrap();
        assert!(!sealed.contains('='));
        assert!(!sealed.contains('+') && !sealed.contains('/'));
        let opened = SessionToken::open(&sealed, &key, &Identity::Anonymous, 1_700_000_100);
        assert_eq!(opened.unwrap(), token());
        let padded = format!("{sealed}{}", "=".repeat((4 - sealed.len() % 4) % 4));
        assert!(SessionToken::open(&padded, &key, &Identity::Anonymous, 1_700_000_100).is_ok());
    }

    #[test]
    fn every_failure_is_reported() {
        let key = TokenKey::new(b"k");
        let alice = Identity::authenticated("bearer", "alice");
        let sealed = token().seal(&key, &alice).unwrap();
        let now = 1_700_000_100;
        let open = |text: &str, key: &TokenKey, who: &Identity, now| {
            SessionToken::open(text, key, who, now).unwrap_err()
        };
        // Happens to be valid base64url: refused on its first byte.
        assert!(matches!(
            open("not-a-real-token", &key, &alice, now),
            TokenError::UnsupportedVersion { .. }
        ));
        assert_eq!(open("!!", &key, &alice, now), TokenError::Malformed);
        assert_eq!(
            open(
                &sealed,
                &key,
                &Identity::authenticated("bearer", "bob"),
                now
            ),
            TokenError::VerificationFailed
        );
        assert_eq!(
            open(&sealed, &TokenKey::new(b"other"), &alice, now),
            TokenError::VerificationFailed
        );
        assert!(matches!(
            open(&sealed, &key, &alice, 1_700_000_301),
            TokenError::Expired { .. }
        ));
        // A stream token is not a session token, even under the same key.
        let stream = crate::TokenPayload {
            created_at: now,
            state: vec![],
            output_schema: vec![],
            input_schema: vec![],
            stream_id: String::new(),
        }
        .seal(&key, &alice);
        let mut raw = crate::BASE64.decode(stream).unwrap();
        assert_eq!(
            open(&BASE64URL.encode(&raw), &key, &alice, now),
            TokenError::UnsupportedVersion { found: 4 }
        );
        // Relabelling it does not help: session tokens use their own subkey.
        raw[0] = SESSION_TOKEN_VERSION;
        assert_eq!(
            open(&BASE64URL.encode(&raw), &key, &alice, now),
            TokenError::VerificationFailed
        );
    }

    #[test]
    fn long_server_ids_are_refused() {
        let mut t = token();
        t.server_id = "x".repeat(256);
        assert_eq!(
            t.seal(&TokenKey::new(b"k"), &Identity::Anonymous),
            Err(TokenError::ServerIdTooLong { len: 256 })
        );
    }
}
