//! zstd bodies decoded as a stream, with the byte cap checked before or
//! while output is produced: a frame that expands past the cap is refused
//! without ever holding more than about the cap (a 100 KB frame can
//! expand to gigabytes).
//!
//! Frames that state their decompressed size (zstd holds each frame to
//! it) are refused at once when the sizes add up to more than the cap, and
//! otherwise decoded into a buffer that grows as output comes. A stream
//! with a frame of unstated size is decoded twice: once into a small
//! scratch buffer only to count its size, refused as soon as the count
//! passes the cap, then into a buffer of exactly that size. Decoding twice
//! costs CPU, but growing a buffer of unknown final size would leave
//! copies behind, up to twice the cap with allocators that keep freed
//! memory resident.

use zstd::zstd_safe::{
    self, DCtx, DParameter, InBuffer, OutBuffer, ResetDirective, get_error_name,
};

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

fn invalid(code: usize) -> DecompressError {
    DecompressError::Invalid(get_error_name(code).to_owned())
}

/// Decompresses a stream of one or more zstd frames, refusing output
/// beyond `limit` bytes.
pub(crate) fn decompress(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    if compressed.is_empty() {
        return Ok(Vec::new());
    }
    let mut context = DCtx::try_create()
        .ok_or_else(|| DecompressError::Invalid("cannot create a zstd decoder".into()))?;
    context
        .set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
        .map_err(invalid)?;
    let too_large = DecompressError::TooLarge { limit };
    let output = match stated_size(compressed) {
        Some(size) if size > limit as u64 => return Err(too_large),
        Some(size) => GrowingBuffer::new(usize::try_from(size).ok()),
        None => {
            let size = measure(&mut context, compressed, limit)?.ok_or(too_large)?;
            context
                .reset(ResetDirective::SessionOnly)
                .map_err(invalid)?;
            let mut exact = Vec::new();
            exact
                .try_reserve_exact(size)
                .map_err(|_| DecompressError::NoMemory)?;
            GrowingBuffer::from(exact)
        }
    };
    let output = decode(&mut context, compressed, output, limit)?;
    Ok(output.into_vec())
}

/// The decompressed size of `compressed` when every frame states its own
/// (skippable frames count for nothing), else `None`; `None` too for
/// input that is not a sequence of frames, which the decoder then reports.
/// A frame cut short counts with the size it states: decoding it fails
/// anyway, unless that size already refuses it.
fn stated_size(compressed: &[u8]) -> Option<u64> {
    let mut rest = compressed;
    let mut total = 0u64;
    while !rest.is_empty() {
        let size = zstd_safe::get_frame_content_size(rest).ok()??;
        total = total.saturating_add(size);
        let Ok(frame) = zstd_safe::find_frame_compressed_size(rest) else {
            break;
        };
        rest = rest.get(frame..)?;
    }
    Some(total)
}

/// Decodes `compressed` into a scratch buffer, counting the output:
/// `None` once the count passes `limit`.
fn measure(
    context: &mut DCtx<'_>,
    compressed: &[u8],
    limit: usize,
) -> Result<Option<usize>, DecompressError> {
    let mut scratch = Vec::with_capacity(STEP);
    let mut input = InBuffer::around(compressed);
    let mut counted = 0usize;
    loop {
        scratch.clear();
        let remaining = {
            let mut out = OutBuffer::around(&mut scratch);
            context
                .decompress_stream(&mut out, &mut input)
                .map_err(invalid)?
        };
        counted = counted.saturating_add(scratch.len());
        if counted > limit {
            return Ok(None);
        }
        if finished(
            &input,
            compressed,
            remaining,
            scratch.len(),
            scratch.capacity(),
        )? {
            return Ok(Some(counted));
        }
    }
}

/// Decodes `compressed` into `output`, never past `limit` bytes.
fn decode(
    context: &mut DCtx<'_>,
    compressed: &[u8],
    mut output: GrowingBuffer,
    limit: usize,
) -> Result<GrowingBuffer, DecompressError> {
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
        if finished(&input, compressed, remaining, output.len() - before, room)? {
            return Ok(output);
        }
    }
}

/// Whether decoding is complete after a call that wrote `written` bytes
/// into `room` and left `remaining` (zstd's hint: 0 when a frame ended);
/// an error for a stream that ends in the middle of a frame.
fn finished(
    input: &InBuffer<'_>,
    compressed: &[u8],
    remaining: usize,
    written: usize,
    room: usize,
) -> Result<bool, DecompressError> {
    let input_done = input.pos() == compressed.len();
    if input_done && remaining == 0 {
        return Ok(true);
    }
    // All input taken and room left over, yet the frame is not done:
    // nothing more can come.
    if input_done && written < room {
        return Err(DecompressError::Invalid(
            "the zstd stream ends in the middle of a frame".into(),
        ));
    }
    Ok(false)
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
    fn stated_sizes_beyond_the_limit_are_refused_before_decoding() {
        let frame = zstd::bulk::compress(&vec![0u8; 600 * 1024], 3).unwrap();
        assert_eq!(stated_size(&frame), Some(600 * 1024));
        // Cut short: decoding would fail, but the stated size is enough.
        let cut = &frame[..frame.len() / 2];
        assert!(matches!(
            decompress(cut, 500 * 1024),
            Err(DecompressError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(cut, 1 << 20),
            Err(DecompressError::Invalid(_))
        ));
        // The sizes of all frames add up.
        let two = frame.repeat(2);
        assert_eq!(stated_size(&two), Some(1200 * 1024));
        assert!(matches!(
            decompress(&two, 1 << 20),
            Err(DecompressError::TooLarge { .. })
        ));
        assert_eq!(decompress(&two, 1200 * 1024).unwrap().len(), 1200 * 1024);
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
