//! Framing: one message is a length prefix, a flatbuffer header and a body
//! whose length the header declares. Both lengths come from the peer, so
//! what is reserved for them grows with the bytes that actually arrive.

use std::borrow::BorrowMut;
use std::cell::Cell;
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
    let (header, _underway) = match read_header(reader, limits, source)? {
        Frame::Message(header) => header,
        Frame::EndOfStream => return Ok(Frame::EndOfStream),
        Frame::Eof => return Ok(Frame::Eof),
    };
    let message = verify_header(&header)?;
    let body_len = body_length(&message, limits)?;
    let body = (source.body)(reader, body_len)?;
    decode(message, body).map(Frame::Message)
}

thread_local! {
    static MID_MESSAGE: Cell<bool> = const { Cell::new(false) };
}

/// Whether a blocking reader on this thread is partway through a message:
/// its length prefix has arrived and its header or body has not yet.
///
/// A transport can tell from this a peer that stalls in the middle of what
/// it sends, which owes bytes, from one that is quiet between messages (a
/// client thinking between the turns of a stream), without parsing the
/// framing itself: the reader asks its byte source for more only when it
/// needs them, on the thread that reads.
pub fn mid_message() -> bool {
    MID_MESSAGE.get()
}

/// A message begun by [`read_header`]; it is over when this is dropped,
/// read whole or not.
#[derive(Debug)]
pub(super) struct Underway(());

impl Underway {
    fn begin() -> Self {
        MID_MESSAGE.set(true);
        Underway(())
    }
}

impl Drop for Underway {
    fn drop(&mut self) {
        MID_MESSAGE.set(false);
    }
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

impl<R: BorrowMut<Cursor<Bytes>>> Source<R> {
    /// Takes from bytes in memory: a claim past their end is refused at
    /// once, and bodies share the bytes.
    pub(super) fn slicing() -> Self {
        Self {
            header: |reader, len| {
                Ok(in_memory(reader.borrow_mut(), len, "message header")?.to_vec())
            },
            body: |reader, len| {
                Ok(Buffer::from(in_memory(
                    reader.borrow_mut(),
                    len,
                    "message body",
                )?))
            },
        }
    }
}

/// Reads a message's length prefix and flatbuffer header, unverified;
/// the message is [`Underway`] until the caller has read its body.
pub(super) fn read_header<R: Read>(
    reader: &mut R,
    limits: &ReadLimits,
    source: Source<R>,
) -> Result<Frame<(Vec<u8>, Underway)>> {
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
    let underway = Underway::begin();
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
    Ok(Frame::Message((header, underway)))
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
/// as address space only: memory is written, and so made resident, just
/// ahead of the bytes as they arrive (`read_claimed`), so a peer that
/// stops sending holds about what it sent. Ordinary bodies thus stay one
/// allocation, never copied to grow. Beyond this size the reservation
/// grows too, doubling as the bytes come in.
pub const EAGER_RESERVE_BYTES: usize = 16 * 1024 * 1024;

/// How far ahead of the bytes received [`read_claimed`] prepares memory:
/// as far as what has arrived so far, within these bounds. Preparing is
/// zeroing (a generic reader can only fill initialised memory), cheapest in
/// pieces that stay in cache until the read overwrites them.
const AHEAD_MIN: usize = 64 * 1024;
const AHEAD_MAX: usize = 1024 * 1024;

/// Reads exactly `len` bytes a peer announced, making memory resident only
/// just ahead of them (see [`EAGER_RESERVE_BYTES`]).
fn read_claimed<R: Read>(reader: &mut R, len: usize, context: &'static str) -> Result<Vec<u8>> {
    // The allocator's 16-byte alignment lets Arrow use the body's buffers
    // in place; were a buffer misaligned, Arrow would copy it, not fail.
    let mut bytes = Vec::new();
    reserve(&mut bytes, len.min(EAGER_RESERVE_BYTES), len, context)?;
    while bytes.len() < len {
        if bytes.len() == bytes.capacity() {
            let more = (len - bytes.len()).min(bytes.capacity());
            reserve(&mut bytes, more, len, context)?;
        }
        let start = bytes.len();
        let end = start
            .saturating_add(start.clamp(AHEAD_MIN, AHEAD_MAX))
            .min(len)
            .min(bytes.capacity());
        bytes.resize(end, 0);
        read_exact_or_truncated(reader, &mut bytes[start..], context)?;
    }
    Ok(bytes)
}

/// Reserves room for `more` bytes of a `len`-byte claim; a reservation the
/// system refuses fails the message, not the process.
fn reserve(bytes: &mut Vec<u8>, more: usize, len: usize, context: &'static str) -> Result<()> {
    bytes.try_reserve_exact(more).map_err(|_| {
        WireError::Io(std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            format!("cannot hold the {len}-byte {context}"),
        ))
    })
}
