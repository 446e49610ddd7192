//! zstd bodies decoded as a stream, with the byte cap checked as output is
//! produced: a frame that expands past the cap is refused once the output
//! passes it, so it never costs more than about the cap (a 100 KB frame can
//! expand to gigabytes).

use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer, get_error_name};

use crate::buffer::GrowingBuffer;

/// The largest zstd window accepted (log2): 8 MiB, what compression levels
/// up to 19 use. The decoder holds a window-sized buffer besides the
/// output, so a larger window would let a frame cost well over the cap;
/// such frames are refused as invalid.
pub(crate) const MAX_WINDOW_LOG: u32 = 23;

/// Output produced per decoder call, zstd's recommended output size.
const STEP: usize = 128 * 1024;

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecompressError {
    /// The output would exceed the cap.
    #[error("decompressed size exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// Not a valid zstd stream (or one needing too large a window).
    #[error("{0}")]
    Invalid(String),
    /// The memory for the output could not be had.
    #[error("out of memory for the decompressed body")]
    NoMemory,
}

/// Decompresses a stream of one or more zstd frames, refusing output
/// beyond `limit` bytes.
pub(crate) fn decompress(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    if compressed.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |code: usize| DecompressError::Invalid(get_error_name(code).to_owned());
    let mut context = DCtx::try_create()
        .ok_or_else(|| DecompressError::Invalid("cannot create a zstd decoder".into()))?;
    context
        .set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
        .map_err(invalid)?;
    // The first frame's declared size is a hint for growing the output,
    // nothing more: it may lie, and later frames add to it.
    let claimed = zstd::zstd_safe::get_frame_content_size(compressed)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok());
    let mut output = GrowingBuffer::new(claimed);
    // One byte past the limit tells "exactly at the limit" from "beyond it".
    let ceiling = limit.saturating_add(1);
    let mut input = InBuffer::around(compressed);
    loop {
        let spare = output
            .spare(STEP, ceiling)
            .map_err(|_| DecompressError::NoMemory)?;
        let (before, room) = (spare.len(), spare.capacity() - spare.len());
        let remaining = {
            let mut out = OutBuffer::around_pos(spare, before);
            context
                .decompress_stream(&mut out, &mut input)
                .map_err(invalid)?
        };
        if output.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        let input_done = input.pos() == compressed.len();
        if input_done && remaining == 0 {
            return Ok(output.into_vec());
        }
        // All input taken and room left over, yet the frame is not done:
        // nothing more can come.
        if input_done && output.len() - before < room {
            return Err(DecompressError::Invalid(
                "the zstd stream ends in the middle of a frame".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn frames_round_trip_up_to_the_limit() {
        let plain = sample(3 << 20);
        let compressed = zstd::bulk::compress(&plain, 3).unwrap();
        assert_eq!(decompress(&compressed, plain.len()).unwrap(), plain);
        assert!(matches!(
            decompress(&compressed, plain.len() - 1),
            Err(DecompressError::TooLarge { limit }) if limit == plain.len() - 1
        ));
    }

    #[test]
    fn streams_without_a_declared_size_and_several_frames_decode() {
        let plain = sample(1 << 20);
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &plain).unwrap();
        let mut compressed = encoder.finish().unwrap();
        compressed.extend_from_slice(&zstd::bulk::compress(&plain, 1).unwrap());
        let decoded = decompress(&compressed, usize::MAX).unwrap();
        assert_eq!(decoded.len(), 2 * plain.len());
        assert_eq!(&decoded[plain.len()..], &plain[..]);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 256 MiB of zeros in a few kilobytes.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut encoder, &zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert!(matches!(
            decompress(&bomb, 4 << 20),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    #[test]
    fn broken_streams_are_invalid() {
        let compressed = zstd::bulk::compress(&sample(100_000), 3).unwrap();
        for broken in [&compressed[..compressed.len() - 3], b"not zstd at all"] {
            assert!(matches!(
                decompress(broken, usize::MAX),
                Err(DecompressError::Invalid(_))
            ));
        }
    }

    #[test]
    fn windows_beyond_the_maximum_are_refused() {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(MAX_WINDOW_LOG + 1).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &sample(4 << 20)).unwrap();
        let compressed = encoder.finish().unwrap();
        assert!(matches!(
            decompress(&compressed, usize::MAX),
            Err(DecompressError::Invalid(_))
        ));
    }
}
