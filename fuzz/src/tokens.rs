//! Sealing arbitrary plaintext as a token, so the fuzzer reaches the code
//! behind the authentication tag.
//!
//! A coverage-guided fuzzer cannot forge a Poly1305 tag, so without help it
//! only ever exercises base64, the version byte and tag verification. The
//! harness therefore seals the fuzzer's bytes itself, following the token
//! format that `vgirpc_token` documents (key stretching, associated data,
//! `version || nonce || ciphertext`), and [`self_check`] makes sure that
//! this follows the crate: a token the crate seals must open here and one
//! sealed here must open in the crate.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use vgirpc_token::{
    Identity, SESSION_TOKEN_VERSION, SessionToken, TOKEN_VERSION, TokenKey, TokenPayload,
};

/// The secret every fuzz target and the seed generator seal tokens with.
pub const SECRET: &[u8] = b"vgirpc fuzz harness token secret";

const STATE_INFO: &[u8] = b"vgi_rpc stream state token key v4";
const SESSION_INFO: &[u8] = b"vgi_rpc session token key v1";
const AAD_PREFIX: &[u8] = b"vgi_rpc.state.v4\x00";
const NONCE: [u8; 24] = [7; 24];

/// The crate's key for [`SECRET`].
pub fn key() -> TokenKey {
    TokenKey::new(SECRET)
}

/// Which of the two token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A stream-state continuation token (standard base64).
    State,
    /// A sticky-session token (unpadded base64url).
    Session,
}

fn state_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, SECRET)
        .expand(STATE_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output");
    key
}

fn cipher(kind: Kind) -> XChaCha20Poly1305 {
    let state = state_key();
    let key = match kind {
        Kind::State => state,
        Kind::Session => {
            let mut key = [0u8; 32];
            Hkdf::<Sha256>::from_prk(&state)
                .expect("32 bytes is a valid HKDF-SHA256 PRK")
                .expand(SESSION_INFO, &mut key)
                .expect("32 bytes is a valid HKDF-SHA256 output");
            key
        }
    };
    XChaCha20Poly1305::new((&key).into())
}

fn aad(identity: &Identity) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    match identity {
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

/// `plaintext` sealed under [`SECRET`] for `identity`, as token text.
pub fn seal(kind: Kind, plaintext: &[u8], identity: &Identity) -> String {
    let aad = aad(identity);
    let ciphertext = cipher(kind)
        .encrypt(
            XNonce::from_slice(&NONCE),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("encrypting an in-memory buffer cannot fail");
    let version = match kind {
        Kind::State => TOKEN_VERSION,
        Kind::Session => SESSION_TOKEN_VERSION,
    };
    let mut raw = vec![version];
    raw.extend_from_slice(&NONCE);
    raw.extend_from_slice(&ciphertext);
    match kind {
        Kind::State => STANDARD.encode(raw),
        Kind::Session => URL_SAFE_NO_PAD.encode(raw),
    }
}

/// The plaintext of a token sealed under [`SECRET`] for `identity`.
pub fn unseal(kind: Kind, token: &str, identity: &Identity) -> Option<Vec<u8>> {
    let raw = match kind {
        Kind::State => STANDARD.decode(token.trim()).ok()?,
        Kind::Session => URL_SAFE_NO_PAD.decode(token.trim()).ok()?,
    };
    let rest = raw.get(1..)?;
    if rest.len() < NONCE.len() {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE.len());
    let aad = aad(identity);
    cipher(kind)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .ok()
}

/// Panics unless tokens sealed here and by `vgirpc_token` open in both.
pub fn self_check() {
    let identity = Identity::authenticated("bearer", "fuzz");
    let payload = TokenPayload {
        created_at: 1_700_000_000,
        state: b"state".to_vec(),
        output_schema: b"out".to_vec(),
        input_schema: b"in".to_vec(),
        stream_id: "stream".into(),
    };
    let plaintext = unseal(Kind::State, &payload.seal(&key(), &identity), &identity)
        .expect("a token sealed by vgirpc_token opens in the harness");
    let resealed = seal(Kind::State, &plaintext, &identity);
    let reopened = TokenPayload::open(&resealed, &key(), &identity, 0, 0)
        .expect("a token sealed by the harness opens in vgirpc_token");
    assert_eq!(reopened, payload);

    let session = SessionToken {
        created_at: 1_700_000_000,
        server_id: "server".into(),
        session_id: [3; vgirpc_token::SESSION_ID_LEN],
        expires_at: 1_800_000_000,
    };
    let sealed = session.seal(&key(), &identity).expect("short server id");
    let plaintext = unseal(Kind::Session, &sealed, &identity)
        .expect("a session token sealed by vgirpc_token opens in the harness");
    let resealed = seal(Kind::Session, &plaintext, &identity);
    let reopened = SessionToken::open(&resealed, &key(), &identity, 0)
        .expect("a session token sealed by the harness opens in vgirpc_token");
    assert_eq!(reopened, session);
}
