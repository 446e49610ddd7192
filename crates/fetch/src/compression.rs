//! Whether zstd pays for a large body, judged the same way by the client
//! for requests and by the server for responses: Arrow buffers of random
//! or already packed values do not compress, and compressing them anyway
//! cost about as much time as everything else in a large call, while the
//! peer reads an uncompressed body as well.

use std::borrow::Cow;
use std::ops::Range;

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
    compressed_len: impl FnMut(&[u8]) -> Result<usize, E>,
) -> Result<bool, E> {
    worth_compressing_pieces(&[body], compressed_len)
}

/// [`worth_compressing`] for a body held in `pieces`, in order: the
/// samples are borrowed from the piece that holds each, or copied from the
/// pieces one spans, so that judging a body never joins it.
///
/// ```
/// // A body of 1 MiB held in two halves, as a large batch's buffers are.
/// let pieces = [vec![7u8; 1 << 19], vec![9u8; 1 << 19]];
/// let pays = vgirpc_fetch::worth_compressing_pieces(&pieces, |piece| {
///     zstd::bulk::compress(piece, 1).map(|out| out.len())
/// })?;
/// assert!(pays);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn worth_compressing_pieces<P: AsRef<[u8]>, E>(
    pieces: &[P],
    mut compressed_len: impl FnMut(&[u8]) -> Result<usize, E>,
) -> Result<bool, E> {
    let len: usize = pieces.iter().map(|piece| piece.as_ref().len()).sum();
    if len < 3 * SAMPLE {
        return Ok(compressed_len(&range(pieces, 0..len))? * 10 <= len * 9);
    }
    let middle = len / 2 - SAMPLE / 2;
    let mut compressed = 0;
    for start in [0, middle, len - SAMPLE] {
        compressed += compressed_len(&range(pieces, start..start + SAMPLE))?;
    }
    Ok(compressed * 10 <= 3 * SAMPLE * 9)
}

/// The bytes of `wanted` in the body `pieces` hold: borrowed from one
/// piece when it holds them all, else copied from those it spans.
fn range<P: AsRef<[u8]>>(pieces: &[P], wanted: Range<usize>) -> Cow<'_, [u8]> {
    let mut start = 0;
    let mut spanned = Vec::new();
    for piece in pieces {
        let piece = piece.as_ref();
        let end = start + piece.len();
        if wanted.start < end && wanted.end > start {
            let within = wanted.start.saturating_sub(start)..wanted.end.min(end) - start;
            if spanned.is_empty() && wanted.end <= end {
                return Cow::Borrowed(&piece[within]);
            }
            spanned.extend_from_slice(&piece[within]);
        }
        start = end;
    }
    Cow::Owned(spanned)
}

#[cfg(test)]
mod tests {
    use vgirpc_test_support::noise;

    use super::*;

    fn zstd_len(piece: &[u8]) -> std::io::Result<usize> {
        zstd::bulk::compress(piece, 3).map(|out| out.len())
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

    #[test]
    fn a_range_is_borrowed_from_one_piece_and_copied_across_several() {
        let pieces: [&[u8]; 3] = [b"abcd", b"efg", b"hijkl"];
        let whole = b"abcdefghijkl";
        for start in 0..=12 {
            for end in start..=12 {
                assert_eq!(&range(&pieces, start..end)[..], &whole[start..end]);
            }
        }
        for within in [0..4, 4..7, 8..12, 9..11] {
            assert!(matches!(range(&pieces, within), Cow::Borrowed(_)));
        }
        for across in [2..6, 3..9, 0..12] {
            assert!(matches!(range(&pieces, across), Cow::Owned(_)));
        }
    }

    #[test]
    fn pieces_are_judged_as_the_body_they_make() {
        let mut body = noise(200 * 1024);
        body[..100 * 1024].fill(0);
        for split in [1, 16 * 1024, 100 * 1024 - 7, 150 * 1024] {
            let (head, tail) = body.split_at(split);
            assert_eq!(
                worth_compressing_pieces(&[head, tail], zstd_len).unwrap(),
                worth_compressing(&body, zstd_len).unwrap(),
                "split at {split}"
            );
        }
    }
}
