//! Bytes that no compressor shrinks, for tests of what a codec does with
//! a body it cannot pay for.

/// `len` bytes of a xorshift sequence: the same bytes on every call, so a
/// failing test fails again.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
