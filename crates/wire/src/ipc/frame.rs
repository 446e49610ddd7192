//! Framing: one message is a length prefix, a flatbuffer header and a body
//! whose length the header declares. Both lengths come from the peer, so
//! what is reserved for them grows with the bytes that actually arrive.

use std::io::{Cursor, Read};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use bytes::Bytes;

use crate::metadata::Metadata;
use crate::{Result, WireError};

/// Marks a framed message; followed by the little-endian metadata length.
pub(super) const CONTINUATION: u32 = 0xFFFF_FFFF;

/// The 8-byte end-of-stream marker (WIRE_PROTOCOL Appendix A).
pub const EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// Upper bounds on what a peer may make us allocate for one message.
///
/// Sizes are declared in the framing before the bytes arrive; without a cap
/// a single corrupt length prefix would make the reader try to allocate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest accepted flatbuffer message header.
    pub max_metadata_bytes: u32,
    /// Largest accepted message body.
    pub max_body_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_metadata_bytes: 64 * 1024 * 1024,
            max_body_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// One record batch together with the custom metadata of its IPC message.
#[derive(Debug, Clone)]
pub struct IpcBatch {
    /// The decoded batch.
    pub batch: RecordBatch,
    /// The message's custom metadata (empty when it carried none).
    pub metadata: Metadata,
}

/// What reading one framed message gave.
pub(super) enum Frame<T> {
    /// A message, as its reader's `decode` turned it into a `T`.
    Message(T),
    EndOfStream,
    /// The byte stream ended cleanly before the first byte of a message.
    Eof,
}

fn read_fully<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_exact_or_truncated<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    context: &'static str,
) -> Result<()> {
    if read_fully(reader, buf)? < buf.len() {
        return Err(WireError::Truncated { context });
    }
    Ok(())
}

/// Reads one framed message and hands it to `decode`.
///
/// The flatbuffer header is verified once, here, and `decode` gets the
/// verified view: verifying is a large share of the per-call CPU of a small
/// request, so it is not repeated.
pub(super) fn read_frame<R: Read, T>(
    reader: &mut R,
    limits: &ReadLimits,
    source: Source<R>,
    decode: impl FnOnce(arrow_ipc::Message<'_>, Buffer) -> Result<T>,
) -> Result<Frame<T>> {
    let header = match read_header(reader, limits, source)? {
        Frame::Message(header) => header,
        Frame::EndOfStream => return Ok(Frame::EndOfStream),
        Frame::Eof => return Ok(Frame::Eof),
    };
    let message = verify_header(&header)?;
    let body_len = body_length(&message, limits)?;
    let body = (source.body)(reader, body_len)?;
    decode(message, body).map(Frame::Message)
}

/// How a reader takes the `len` bytes a message header or body announces:
/// copied out of any [`Read`] as they arrive, or, from bytes already in
/// memory, checked against what is there before anything is reserved
/// (and bodies sliced rather than copied).
pub(super) struct Source<R> {
    header: fn(&mut R, usize) -> Result<Vec<u8>>,
    pub(super) body: fn(&mut R, usize) -> Result<Buffer>,
}

impl<R> Clone for Source<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Source<R> {}

impl<R> std::fmt::Debug for Source<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").finish_non_exhaustive()
    }
}

impl<R: Read> Source<R> {
    /// Copies out of a [`Read`], reserving as the bytes arrive.
    pub(super) fn copying() -> Self {
        Self {
            header: |reader, len| read_claimed(reader, len, "message header"),
            body: copy_body,
        }
    }
}

impl Source<Cursor<Bytes>> {
    /// Takes from bytes in memory: a claim past their end is refused at
    /// once, and bodies share the bytes.
    pub(super) fn slicing() -> Self {
        Self {
            header: |reader, len| Ok(in_memory(reader, len, "message header")?.to_vec()),
            body: |reader, len| Ok(Buffer::from(in_memory(reader, len, "message body")?)),
        }
    }
}

/// Reads a message's length prefix and flatbuffer header, unverified.
pub(super) fn read_header<R: Read>(
    reader: &mut R,
    limits: &ReadLimits,
    source: Source<R>,
) -> Result<Frame<Vec<u8>>> {
    let mut word = [0u8; 4];
    match read_fully(reader, &mut word)? {
        0 => return Ok(Frame::Eof),
        4 => {}
        _ => {
            return Err(WireError::Truncated {
                context: "message length prefix",
            });
        }
    }
    let mut len = u32::from_le_bytes(word);
    if len == CONTINUATION {
        read_exact_or_truncated(reader, &mut word, "message length prefix")?;
        len = u32::from_le_bytes(word);
    }
    if len == 0 {
        return Ok(Frame::EndOfStream);
    }
    if len > i32::MAX as u32 || len > limits.max_metadata_bytes {
        return Err(WireError::TooLarge {
            size: u64::from(len),
            limit: u64::from(limits.max_metadata_bytes),
        });
    }
    let header = (source.header)(reader, len as usize)?;
    Ok(Frame::Message(header))
}

pub(super) fn verify_header(header: &[u8]) -> Result<arrow_ipc::Message<'_>> {
    arrow_ipc::root_as_message(header)
        .map_err(|e| WireError::Malformed(format!("invalid message flatbuffer: {e}")))
}

/// The body length `message` declares, within `limits`.
pub(super) fn body_length(message: &arrow_ipc::Message<'_>, limits: &ReadLimits) -> Result<usize> {
    let body_len = u64::try_from(message.bodyLength())
        .map_err(|_| WireError::Malformed("negative message body length".into()))?;
    if body_len > limits.max_body_bytes {
        return Err(WireError::TooLarge {
            size: body_len,
            limit: limits.max_body_bytes,
        });
    }
    usize::try_from(body_len)
        .map_err(|_| WireError::Malformed("message body too large for this platform".into()))
}

/// Reads a body of `len` bytes into memory of its own.
fn copy_body<R: Read>(reader: &mut R, len: usize) -> Result<Buffer> {
    Ok(Buffer::from_vec(read_claimed(reader, len, "message body")?))
}

/// The next `len` bytes of an in-memory stream, shared with it; a claim
/// past the end is truncation.
fn in_memory(reader: &mut Cursor<Bytes>, len: usize, context: &'static str) -> Result<Bytes> {
    let start = usize::try_from(reader.position()).unwrap_or(usize::MAX);
    let end = start
        .checked_add(len)
        .filter(|&end| end <= reader.get_ref().len())
        .ok_or(WireError::Truncated { context })?;
    let taken = reader.get_ref().slice(start..end);
    reader.set_position(end as u64);
    Ok(taken)
}

/// How much of a declared length is reserved before its bytes arrive.
///
/// Lengths come from the peer, so trusting one outright lets a few bytes
/// claim gigabytes. Up to this size the whole length is reserved at once,
/// which keeps ordinary bodies to one allocation and one read; beyond it
/// the buffer grows only as bytes come in, doubling each time, so what is
/// held stays within twice what the peer actually sent.
pub const EAGER_RESERVE_BYTES: usize = 16 * 1024 * 1024;

/// Reads exactly `len` bytes a peer announced, reserving memory as they
/// arrive rather than all at once (see [`EAGER_RESERVE_BYTES`]).
fn read_claimed<R: Read>(reader: &mut R, len: usize, context: &'static str) -> Result<Vec<u8>> {
    // The allocator's 16-byte alignment lets Arrow use the body's buffers
    // in place; were a buffer misaligned, Arrow would copy it, not fail.
    if len <= EAGER_RESERVE_BYTES {
        // A zeroed allocation of this size is fresh zero pages, which cost
        // nothing to zero; reading into spare capacity instead zeroes it
        // first whenever the reader cannot fill uninitialised memory
        // (a `BufReader` over anything but a slice), writing every byte
        // of a multi-megabyte batch twice.
        let mut bytes = vec![0; len];
        read_exact_or_truncated(reader, &mut bytes, context)?;
        return Ok(bytes);
    }
    let mut bytes = Vec::with_capacity(EAGER_RESERVE_BYTES);
    while bytes.len() < len {
        if bytes.len() == bytes.capacity() {
            let more = (len - bytes.len()).min(bytes.capacity().max(EAGER_RESERVE_BYTES));
            bytes.try_reserve_exact(more).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!("cannot hold the {len}-byte {context}"),
                )
            })?;
        }
        let room = (bytes.capacity() - bytes.len()).min(len - bytes.len());
        // `take` stops the read at the reserved room, so `read_to_end`
        // never grows the buffer by its own policy.
        let read = (&mut *reader).take(room as u64).read_to_end(&mut bytes)?;
        if read < room {
            return Err(WireError::Truncated { context });
        }
    }
    Ok(bytes)
}
