//! Stream-state and session token opening (`vgirpc_token`).
//!
//! The first byte picks what the rest is: token text as a client sends it,
//! or a plaintext that the harness seals first (a fuzzer cannot forge the
//! authentication tag, and the layout parsing sits behind it). The second
//! byte picks the identity. Besides not failing, a token that opens must
//! seal and open again to the same value, and a sealed token with any
//! bit changed must not open, under its own kind or the other.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use vgirpc_fuzz::budget::check_input;
use vgirpc_fuzz::tokens::{self, Kind};
use vgirpc_token::{Identity, SESSION_TOKEN_VERSION, SessionToken, TokenPayload};

const NOW: u64 = 1_700_000_100;
const TTL: u64 = 3_600;

fn open_text(text: &str, identity: &Identity) {
    let key = tokens::key();
    let _ = TokenPayload::open(text, &key, identity, TTL, NOW);
    let _ = SessionToken::open(text, &key, identity, NOW);
}

fn round_trip_state(plaintext: &[u8], identity: &Identity) {
    let key = tokens::key();
    let sealed = tokens::seal(Kind::State, plaintext, identity);
    if let Ok(payload) = TokenPayload::open(&sealed, &key, identity, TTL, NOW) {
        let again = TokenPayload::open(&payload.seal(&key, identity), &key, identity, 0, NOW);
        assert_eq!(
            again.as_ref(),
            Ok(&payload),
            "a state token must survive a round trip"
        );
    }
}

fn round_trip_session(plaintext: &[u8], identity: &Identity) {
    let key = tokens::key();
    let sealed = tokens::seal(Kind::Session, plaintext, identity);
    if let Ok(token) = SessionToken::open(&sealed, &key, identity, NOW) {
        let resealed = token.seal(&key, identity).expect("an opened token reseals");
        let again = SessionToken::open(&resealed, &key, identity, NOW);
        assert_eq!(
            again.as_ref(),
            Ok(&token),
            "a session token must survive a round trip"
        );
    }
}

/// Flips one bit of a sealed state token, chosen by the input.
fn tampered(plaintext: &[u8], identity: &Identity) {
    let key = tokens::key();
    let sealed = tokens::seal(Kind::State, plaintext, identity);
    let mut raw = STANDARD.decode(&sealed).expect("sealed tokens are base64");
    let pick = plaintext.iter().fold(0usize, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(b.into())
    });
    let bit = pick % (raw.len() * 8);
    raw[bit / 8] ^= 1 << (bit % 8);
    let forged = STANDARD.encode(&raw);
    assert!(
        TokenPayload::open(&forged, &key, identity, 0, NOW).is_err(),
        "a state token with bit {bit} flipped opened"
    );
    // The same ciphertext passed off as the other kind.
    raw[bit / 8] ^= 1 << (bit % 8);
    raw[0] = SESSION_TOKEN_VERSION;
    assert!(
        SessionToken::open(&URL_SAFE_NO_PAD.encode(&raw), &key, identity, NOW).is_err(),
        "a state token opened as a session token"
    );
}

fuzz_target!(
    init: {
        tokens::self_check();
    },
    |data: &[u8]| {
        let [mode, who, rest @ ..] = data else {
            return;
        };
        let identity = match who % 3 {
            0 => Identity::Anonymous,
            1 => Identity::authenticated("bearer", "fuzz"),
            _ => Identity::authenticated("", ""),
        };
        check_input(data.len(), || match mode % 4 {
            0 => open_text(&String::from_utf8_lossy(rest), &identity),
            1 => round_trip_state(rest, &identity),
            2 => round_trip_session(rest, &identity),
            _ => tampered(rest, &identity),
        });
    }
);
