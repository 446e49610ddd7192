//! Round trip and every documented rejection of a state token.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use vgirpc_token::{Identity, TOKEN_VERSION, TokenError, TokenKey, TokenPayload};

const NOW: u64 = 1_750_000_000;

fn payload() -> TokenPayload {
    TokenPayload {
        created_at: NOW,
        state: b"\xff\xff\xff\xffstate bytes".to_vec(),
        output_schema: vec![1, 2, 3, 4],
        input_schema: Vec::new(),
        stream_id: "5f0c8e6a1b2d4c3e9a7b6c5d4e3f2a1b".into(),
    }
}

fn anonymous() -> Identity {
    Identity::Anonymous
}

fn open(token: &str, key: &TokenKey, identity: &Identity) -> Result<TokenPayload, TokenError> {
    TokenPayload::open(token, key, identity, 3600, NOW + 1)
}

#[test]
fn round_trip_for_anonymous_and_authenticated_callers() {
    let key = TokenKey::new(b"shared secret");
    for identity in [anonymous(), Identity::authenticated("bearer", "alice")] {
        let token = payload().seal(&key, &identity);
        assert_eq!(open(&token, &key, &identity).unwrap(), payload());
    }
}

#[test]
fn sealing_twice_uses_fresh_nonces() {
    let key = TokenKey::new(b"k");
    assert_ne!(
        payload().seal(&key, &anonymous()),
        payload().seal(&key, &anonymous())
    );
}

#[test]
fn a_flipped_bit_anywhere_is_rejected() {
    let key = TokenKey::new(b"k");
    let raw = BASE64.decode(payload().seal(&key, &anonymous())).unwrap();
    for byte in 0..raw.len() {
        for bit in 0..8 {
            let mut tampered = raw.clone();
            tampered[byte] ^= 1 << bit;
            let err = open(&BASE64.encode(&tampered), &key, &anonymous()).unwrap_err();
            let expected = if byte == 0 {
                TokenError::UnsupportedVersion {
                    found: TOKEN_VERSION ^ (1 << bit),
                }
            } else {
                TokenError::VerificationFailed
            };
            assert_eq!(err, expected, "bit {bit} of byte {byte}");
            assert_eq!(
                err.client_message(),
                "State token signature verification failed"
            );
        }
    }
}

#[test]
fn a_wrong_key_is_rejected() {
    let token = payload().seal(&TokenKey::new(b"worker a"), &anonymous());
    assert_eq!(
        open(&token, &TokenKey::new(b"worker b"), &anonymous()).unwrap_err(),
        TokenError::VerificationFailed
    );
}

#[test]
fn another_principals_aad_is_rejected() {
    let key = TokenKey::new(b"k");
    let alice = Identity::authenticated("bearer", "alice");
    let token = payload().seal(&key, &alice);
    for other in [
        Identity::authenticated("bearer", "bob"),
        Identity::authenticated("oauth", "alice"),
        // Shifting the separator must not yield the same associated data.
        Identity::authenticated("beareralice", ""),
        anonymous(),
    ] {
        assert_eq!(
            open(&token, &key, &other).unwrap_err(),
            TokenError::VerificationFailed,
            "{other:?}"
        );
    }
}

#[test]
fn a_wrong_version_byte_is_rejected_before_decrypting() {
    let key = TokenKey::new(b"k");
    let mut raw = BASE64.decode(payload().seal(&key, &anonymous())).unwrap();
    raw[0] = 3;
    assert_eq!(
        open(&BASE64.encode(&raw), &key, &anonymous()).unwrap_err(),
        TokenError::UnsupportedVersion { found: 3 }
    );
    // A bare version byte is judged on the version alone: no crypto is attempted.
    assert_eq!(
        open(&BASE64.encode([9u8]), &key, &anonymous()).unwrap_err(),
        TokenError::UnsupportedVersion { found: 9 }
    );
}

#[test]
fn an_expired_token_is_rejected_after_authenticity() {
    let key = TokenKey::new(b"k");
    let token = payload().seal(&key, &anonymous());
    assert!(TokenPayload::open(&token, &key, &anonymous(), 60, NOW + 60).is_ok());
    let err = TokenPayload::open(&token, &key, &anonymous(), 60, NOW + 61).unwrap_err();
    assert_eq!(
        err,
        TokenError::Expired {
            age_secs: 61,
            ttl_secs: 60
        }
    );
    assert_eq!(err.client_message(), "State token expired");
    // A TTL of zero disables the check.
    assert!(TokenPayload::open(&token, &key, &anonymous(), 0, NOW + 1_000_000).is_ok());
    // Under the wrong key an old token reports the authenticity failure, not
    // its age: the timestamp cannot be trusted before the tag is.
    assert_eq!(
        TokenPayload::open(&token, &TokenKey::new(b"x"), &anonymous(), 60, NOW + 61).unwrap_err(),
        TokenError::VerificationFailed
    );
}

#[test]
fn garbage_is_malformed() {
    let key = TokenKey::new(b"k");
    for token in ["not base64!", "", "BA=="] {
        assert_eq!(
            open(token, &key, &anonymous()).unwrap_err(),
            TokenError::Malformed,
            "{token:?}"
        );
    }
    assert_eq!(
        TokenError::Malformed.client_message(),
        "Malformed state token"
    );
}
