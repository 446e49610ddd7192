//! Whether zstd pays for a large body, judged the same way by the client
//! for requests and by the server for responses: Arrow buffers of random
//! or already packed values do not compress, and compressing them anyway
//! cost about as much time as everything else in a large call, while the
//! peer reads an uncompressed body as well.

/// HTTP bodies shorter than this are sent as they are, whatever zstd could
/// make of them: they cross the link in a few TCP segments either way, and
/// a frame costs both sides more time (a compression on one, a decoding on
/// the other) than the bytes it saves. Nearly every unary call is below it.
pub const SMALL_BODY: usize = 4 * 1024;

/// Bytes compressed from each of three places in a large body to judge it.
const SAMPLE: usize = 16 * 1024;

/// Whether `body` shrinks by at least a tenth under zstd, judged from
/// samples at its start, middle and end (the whole of a body shorter than
/// three samples); `compressed_len` compresses a piece and says how long
/// the result is, with whatever compression context the caller keeps.
///
/// ```
/// let zeros = vec![0u8; 1 << 20];
/// let pays = vgirpc_fetch::worth_compressing(&zeros, |piece| {
///     zstd::bulk::compress(piece, 1).map(|out| out.len())
/// })?;
/// assert!(pays);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn worth_compressing<E>(
    body: &[u8],
    mut compressed_len: impl FnMut(&[u8]) -> Result<usize, E>,
) -> Result<bool, E> {
    if body.len() < 3 * SAMPLE {
        return Ok(compressed_len(body)? * 10 <= body.len() * 9);
    }
    let middle = body.len() / 2 - SAMPLE / 2;
    let (mut sampled, mut compressed) = (0, 0);
    for start in [0, middle, body.len() - SAMPLE] {
        let sample = &body[start..start + SAMPLE];
        compressed += compressed_len(sample)?;
        sampled += sample.len();
    }
    Ok(compressed * 10 <= sampled * 9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zstd_len(piece: &[u8]) -> std::io::Result<usize> {
        zstd::bulk::compress(piece, 3).map(|out| out.len())
    }

    /// Bytes no compressor shrinks (a xorshift sequence).
    fn noise(len: usize) -> Vec<u8> {
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

    #[test]
    fn noise_is_not_worth_it_and_repetition_is() {
        for len in [1000, 200 * 1024] {
            assert!(!worth_compressing(&noise(len), zstd_len).unwrap(), "{len}");
            assert!(
                worth_compressing(&vec![7u8; len], zstd_len).unwrap(),
                "{len}"
            );
        }
    }

    #[test]
    fn a_compressible_head_does_not_decide_for_the_buffers_behind_it() {
        // An IPC schema message, say, before random float64 columns.
        let mut body = vec![0u8; 4096];
        body.extend_from_slice(&noise(256 * 1024));
        assert!(!worth_compressing(&body, zstd_len).unwrap());
    }
}
