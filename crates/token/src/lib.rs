//! Stream-state and session tokens for vgi-rpc's HTTP transport.
//!
//! Over HTTP every stream turn is its own request, so the state of a
//! producer or exchange stream travels with the client as an opaque token
//! (WIRE_PROTOCOL.md §10, "State token binary format"). Any worker holding
//! the same [`TokenKey`] can continue any stream. This crate seals and opens
//! those tokens; it knows nothing of HTTP, streams or Arrow beyond carrying
//! their bytes.
//!
//! A token (v4) is `version (1 byte) || nonce (24 bytes) || ciphertext+tag`,
//! base64-encoded. The ciphertext is XChaCha20-Poly1305 over
//!
//! ```text
//! created_at u64 LE | state_len u32 LE | state | schema_len u32 LE | schema
//!                   | input_len u32 LE | input | stream_id_len u32 LE | stream_id
//! ```
//!
//! with associated data binding the token to the identity that may open it
//! ([`Identity`]). Opening checks, in order: base64, the version byte (no
//! crypto spent on a foreign format), authenticity, the plaintext layout, and
//! finally the age against the TTL: the timestamp sits inside the ciphertext,
//! so it can only be trusted once the tag has been verified.
//!
//! ```
//! use vgirpc_token::{Identity, TokenKey, TokenPayload, TokenError};
//!
//! let key = TokenKey::new(b"shared by every worker");
//! let alice = Identity::authenticated("bearer", "alice");
//! let payload = TokenPayload {
//!     created_at: 1_700_000_000,
//!     state: b"state".to_vec(),
//!     output_schema: b"out".to_vec(),
//!     input_schema: b"in".to_vec(),
//!     stream_id: "0123abcd".into(),
//! };
//! let token = payload.seal(&key, &alice);
//!
//! let opened = TokenPayload::open(&token, &key, &alice, 3600, 1_700_000_010).unwrap();
//! assert_eq!(opened, payload);
//!
//! // Another principal cannot replay it, even with the same key.
//! let mallory = Identity::authenticated("bearer", "mallory");
//! let err = TokenPayload::open(&token, &key, &mallory, 3600, 1_700_000_010).unwrap_err();
//! assert_eq!(err, TokenError::VerificationFailed);
//! ```
//!
//! Error texts are for logs and are not a stable contract; transports should
//! map them to the reference's uniform client-facing messages
//! ([`TokenError::client_message`]).
//!
//! [`SessionToken`]s name a sticky session held in one worker's memory
//! (`VGI-Session` headers); they are sealed with the same key and the same
//! identity-bound associated data, in a format of their own.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod session;

pub use session::{SESSION_ID_LEN, SESSION_TOKEN_VERSION, SessionToken};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// The token format this crate writes and accepts.
pub const TOKEN_VERSION: u8 = 4;

/// Environment variable holding the shared secret when none is configured.
pub const TOKEN_KEY_ENV: &str = "VGI_TOKEN_KEY";

/// The reference's default token lifetime, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3600;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_PREFIX: &[u8] = b"vgi_rpc.state.v4\x00";
/// Domain separation for key stretching: a secret used elsewhere yields an
/// unrelated token key.
const HKDF_INFO: &[u8] = b"vgi_rpc stream state token key v4";
/// Session tokens are sealed under a subkey of their own, so that no
/// ciphertext of one token kind can ever be passed off as the other (the
/// version byte that tells them apart is not authenticated).
const SESSION_HKDF_INFO: &[u8] = b"vgi_rpc session token key v1";

/// Why a token could not be opened.
///
/// The variants exist for logs and tests. Clients should see only the
/// uniform text of [`TokenError::client_message`], so that a tampered token,
/// a token sealed under another key and one minted for another principal are
/// indistinguishable to them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not base64, too short, or the decrypted layout is inconsistent.
    #[error("malformed state token")]
    Malformed,
    /// The version byte names a format this crate does not speak.
    #[error("unsupported state token version {found}")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The authentication tag did not verify: tampered bytes, another key,
    /// or another identity's associated data.
    #[error("state token verification failed")]
    VerificationFailed,
    /// The token is authentic but older than the TTL allows.
    #[error("state token expired: {age_secs} s old, ttl {ttl_secs} s")]
    Expired {
        /// Seconds since the token was sealed.
        age_secs: u64,
        /// The TTL it was checked against.
        ttl_secs: u64,
    },
    /// A configured key was not valid hex.
    #[error("token key is not valid hex")]
    InvalidKeyHex,
    /// A session token's server id does not fit its one-byte length.
    #[error("server id of {len} bytes is too long for a session token (at most 255)")]
    ServerIdTooLong {
        /// Length of the server id in bytes.
        len: usize,
    },
}

impl TokenError {
    /// The message the reference sends to clients for this failure.
    pub fn client_message(&self) -> &'static str {
        match self {
            TokenError::Malformed => "Malformed state token",
            TokenError::Expired { .. } => "State token expired",
            _ => "State token signature verification failed",
        }
    }
}

/// The 32-byte XChaCha20-Poly1305 key tokens are sealed with.
///
/// Secrets of any length are stretched with HKDF-SHA256, so a short
/// passphrase and a 32-byte random key are used the same way. Every worker
/// that must continue each other's streams needs the same secret.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself never reaches logs.
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// Derives the key from a shared secret of any length.
    pub fn new(secret: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, secret);
        let mut key = [0u8; 32];
        hkdf.expand(HKDF_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(key)
    }

    /// Derives the key from a hex-encoded secret (as passed on command lines).
    pub fn from_hex(hex: &str) -> Result<Self, TokenError> {
        let hex = hex.trim();
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err(TokenError::InvalidKeyHex);
        }
        let secret = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| TokenError::InvalidKeyHex)?;
        Ok(Self::new(&secret))
    }

    /// The key derived from `$VGI_TOKEN_KEY` (its UTF-8 bytes are the
    /// secret, as in the reference's deployment recipes), if set and non-empty.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(TOKEN_KEY_ENV)
            .filter(|value| !value.is_empty())
            .map(|value| Self::new(value.as_encoded_bytes()))
    }

    /// A fresh random key. Tokens sealed with it open only in this process.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        Self::new(&secret)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    fn session_cipher(&self) -> XChaCha20Poly1305 {
        let hkdf = Hkdf::<Sha256>::from_prk(&self.0).expect("32 bytes is a valid HKDF-SHA256 PRK");
        let mut key = [0u8; 32];
        hkdf.expand(SESSION_HKDF_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        XChaCha20Poly1305::new((&key).into())
    }
}

/// Who a token is bound to: only a request with the same identity opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A request that was not authenticated.
    Anonymous,
    /// An authenticated principal within an authentication domain.
    Authenticated {
        /// The authentication scheme or realm (`bearer`, an issuer...).
        domain: String,
        /// The caller's identity within the domain.
        principal: String,
    },
}

impl Identity {
    /// Shorthand for [`Identity::Authenticated`].
    pub fn authenticated(domain: impl Into<String>, principal: impl Into<String>) -> Self {
        Identity::Authenticated {
            domain: domain.into(),
            principal: principal.into(),
        }
    }

    /// The associated data: a fixed, versioned prefix (so it never collides
    /// with a future format) followed by the identity tail.
    fn aad(&self) -> Vec<u8> {
        let mut aad = AAD_PREFIX.to_vec();
        match self {
            Identity::Anonymous => aad.extend_from_slice(b"\x00anonymous"),
            Identity::Authenticated { domain, principal } => {
                aad.push(1);
                aad.extend_from_slice(domain.as_bytes());
                aad.push(0);
                aad.extend_from_slice(principal.as_bytes());
            }
        }
        aad
    }
}

/// What a token carries, in the clear once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPayload {
    /// Seconds since the Unix epoch when the token was sealed.
    pub created_at: u64,
    /// The stream state, encoded by the server.
    pub state: Vec<u8>,
    /// The serialized output schema.
    pub output_schema: Vec<u8>,
    /// The serialized input schema (the empty schema for producers).
    pub input_schema: Vec<u8>,
    /// Correlation id shared by every turn of one stream.
    pub stream_id: String,
}

impl TokenPayload {
    /// Seals the payload for `identity` and returns the base64 token.
    pub fn seal(&self, key: &TokenKey, identity: &Identity) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        BASE64.encode(self.seal_with_nonce(key, identity, &nonce))
    }

    fn seal_with_nonce(&self, key: &TokenKey, identity: &Identity, nonce: &[u8; 24]) -> Vec<u8> {
        let plaintext = self.to_plaintext();
        let aad = identity.aad();
        let ciphertext = key
            .cipher()
            .encrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut token = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(nonce);
        token.extend_from_slice(&ciphertext);
        token
    }

    /// Opens a base64 token sealed for `identity`.
    ///
    /// `ttl_secs` of 0 disables the age check; `now` is the current time in
    /// seconds since the Unix epoch (see [`unix_now`]), passed in so expiry
    /// is testable.
    pub fn open(
        token: &str,
        key: &TokenKey,
        identity: &Identity,
        ttl_secs: u64,
        now: u64,
    ) -> Result<Self, TokenError> {
        let raw = BASE64
            .decode(token.trim().as_bytes())
            .map_err(|_| TokenError::Malformed)?;
        Self::open_raw(&raw, key, identity, ttl_secs, now)
    }

    fn open_raw(
        raw: &[u8],
        key: &TokenKey,
        identity: &Identity,
        ttl_secs: u64,
        now: u64,
    ) -> Result<Self, TokenError> {
        let (&version, rest) = raw.split_first().ok_or(TokenError::Malformed)?;
        if version != TOKEN_VERSION {
            return Err(TokenError::UnsupportedVersion { found: version });
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = identity.aad();
        let plaintext = key
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| TokenError::VerificationFailed)?;
        let payload = Self::from_plaintext(&plaintext)?;
        if ttl_secs > 0 {
            let age_secs = now.saturating_sub(payload.created_at);
            if age_secs > ttl_secs {
                return Err(TokenError::Expired { age_secs, ttl_secs });
            }
        }
        Ok(payload)
    }

    fn to_plaintext(&self) -> Vec<u8> {
        let segments = [
            self.state.as_slice(),
            self.output_schema.as_slice(),
            self.input_schema.as_slice(),
            self.stream_id.as_bytes(),
        ];
        let len = 8 + segments.iter().map(|s| 4 + s.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.created_at.to_le_bytes());
        for segment in segments {
            let seg_len = u32::try_from(segment.len()).expect("token segments are below 4 GiB");
            out.extend_from_slice(&seg_len.to_le_bytes());
            out.extend_from_slice(segment);
        }
        out
    }

    fn from_plaintext(plaintext: &[u8]) -> Result<Self, TokenError> {
        let mut reader = Segments { rest: plaintext };
        let created_at = u64::from_le_bytes(reader.take(8)?.try_into().expect("took 8 bytes"));
        let state = reader.segment()?.to_vec();
        let output_schema = reader.segment()?.to_vec();
        let input_schema = reader.segment()?.to_vec();
        let stream_id =
            String::from_utf8(reader.segment()?.to_vec()).map_err(|_| TokenError::Malformed)?;
        if !reader.rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Self {
            created_at,
            state,
            output_schema,
            input_schema,
            stream_id,
        })
    }
}

/// Cursor over the length-prefixed plaintext segments.
struct Segments<'a> {
    rest: &'a [u8],
}

impl<'a> Segments<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.rest.len() < n {
            return Err(TokenError::Malformed);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn segment(&mut self) -> Result<&'a [u8], TokenError> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("took 4 bytes"));
        self.take(usize::try_from(len).map_err(|_| TokenError::Malformed)?)
    }
}

/// Seconds since the Unix epoch, for [`TokenPayload::seal`] timestamps and
/// [`TokenPayload::open`]'s `now`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_v4_specification() {
        let key = TokenKey::new(b"k");
        let payload = TokenPayload {
            created_at: 0x0102_0304_0506_0708,
            state: vec![0xAA; 3],
            output_schema: vec![0xBB; 2],
            input_schema: vec![],
            stream_id: "s".into(),
        };
        let plaintext = payload.to_plaintext();
        assert_eq!(&plaintext[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&plaintext[8..12], &3u32.to_le_bytes());
        assert_eq!(plaintext.len(), 8 + 4 + 3 + 4 + 2 + 4 + 4 + 1);

        let raw = payload.seal_with_nonce(&key, &Identity::Anonymous, &[7; 24]);
        assert_eq!(raw[0], TOKEN_VERSION);
        assert_eq!(&raw[1..25], &[7; 24]);
        assert_eq!(raw.len(), 1 + 24 + plaintext.len() + TAG_LEN);
    }

    #[test]
    fn aad_distinguishes_anonymous_from_every_principal() {
        assert_eq!(
            Identity::Anonymous.aad(),
            b"vgi_rpc.state.v4\x00\x00anonymous".to_vec()
        );
        assert_eq!(
            Identity::authenticated("d", "p").aad(),
            b"vgi_rpc.state.v4\x00\x01d\x00p".to_vec()
        );
    }

    #[test]
    fn keys_are_stretched_deterministically() {
        assert_eq!(TokenKey::new(b"a").0, TokenKey::new(b"a").0);
        assert_ne!(TokenKey::new(b"a").0, TokenKey::new(b"b").0);
        assert_eq!(
            TokenKey::from_hex("0a0b").unwrap().0,
            TokenKey::new(&[10, 11]).0
        );
        assert_eq!(
            TokenKey::from_hex("0g").unwrap_err(),
            TokenError::InvalidKeyHex
        );
        assert_eq!(format!("{:?}", TokenKey::new(b"secret")), "TokenKey(..)");
    }
}
