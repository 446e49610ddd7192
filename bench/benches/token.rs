//! Stream-state tokens: sealing and opening one, as the HTTP transport does
//! on every turn of a stream.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vgirpc_token::{Identity, TokenKey, TokenPayload, unix_now};

/// A token the size of a small exchange state with its two schemas.
fn payload() -> TokenPayload {
    TokenPayload {
        created_at: unix_now(),
        state: vec![7; 96],
        output_schema: vec![1; 208],
        input_schema: vec![2; 208],
        stream_id: "0123456789abcdef0123456789abcdef".to_owned(),
    }
}

fn token(c: &mut Criterion) {
    let key = TokenKey::new(b"bench secret");
    let identity = Identity::authenticated("bearer", "alice");
    let payload = payload();
    let sealed = payload.seal(&key, &identity);
    let now = unix_now();

    c.bench_function("token/seal", |b| {
        b.iter(|| black_box(&payload).seal(&key, &identity))
    });
    c.bench_function("token/open", |b| {
        b.iter(|| TokenPayload::open(black_box(&sealed), &key, &identity, 3600, now).unwrap())
    });
}

criterion_group!(benches, token);
criterion_main!(benches);
