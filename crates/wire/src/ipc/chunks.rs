//! IPC stream bytes in memory as a list of pieces, so that a large batch's
//! Arrow buffers can be sent (an HTTP body, say) without being copied into
//! one contiguous buffer first.

use std::io::{self, Write};

use arrow_buffer::Buffer;
use bytes::Bytes;

/// Buffers at least this large are kept by reference count; smaller ones
/// are copied next to their neighbours, which costs less than a piece of
/// their own does downstream (one more frame, one more iovec).
const SHARE_BYTES: usize = 64 * 1024;

/// Bytes written in pieces: what is written through [`Write`] (message
/// headers, small batches) is gathered in one growing piece, while
/// [`StreamWriter::write_shared`](super::StreamWriter::write_shared) adds
/// a large batch's Arrow buffers as pieces of their own, shared with the
/// batch rather than copied.
///
/// ```
/// use std::io::Write;
/// use vgirpc_wire::ipc::Chunks;
///
/// let mut chunks = Chunks::new();
/// chunks.write_all(b"vgi")?;
/// chunks.write_all(b"-rpc")?;
/// assert_eq!(chunks.len(), 7);
/// assert_eq!(chunks.into_pieces().concat(), b"vgi-rpc");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Chunks {
    done: Vec<Bytes>,
    tail: Vec<u8>,
    len: usize,
}

impl Chunks {
    /// No bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held, in all pieces.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the first `len` bytes (no-op if fewer are held), as
    /// `Vec::truncate` does.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let mut kept = 0;
        let mut pieces = 0;
        for piece in &mut self.done {
            if kept + piece.len() >= len {
                piece.truncate(len - kept);
                kept = len;
                pieces += 1;
                break;
            }
            kept += piece.len();
            pieces += 1;
        }
        self.done.truncate(pieces);
        self.done.retain(|piece| !piece.is_empty());
        self.tail.truncate(len - kept);
        self.len = len;
    }

    /// The pieces in order, none of them empty.
    pub fn into_pieces(mut self) -> Vec<Bytes> {
        self.seal_tail();
        self.done
    }

    /// Adds `buffer` as a piece of its own when it is large enough to be
    /// worth sharing, else copies it.
    pub(super) fn push_buffer(&mut self, buffer: &Buffer) {
        if buffer.len() < SHARE_BYTES {
            self.tail.extend_from_slice(buffer.as_slice());
            self.len += buffer.len();
            return;
        }
        self.seal_tail();
        self.len += buffer.len();
        self.done.push(Bytes::from_owner(buffer.clone()));
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.done.push(Bytes::from(std::mem::take(&mut self.tail)));
        }
    }
}

impl From<Vec<u8>> for Chunks {
    fn from(bytes: Vec<u8>) -> Self {
        Self {
            done: Vec::new(),
            len: bytes.len(),
            tail: bytes,
        }
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tail.extend_from_slice(data);
        self.len += data.len();
        Ok(data.len())
    }

    fn write_vectored(&mut self, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let before = self.tail.len();
        self.tail.write_vectored(slices)?;
        let written = self.tail.len() - before;
        self.len += written;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces_of(chunks: Chunks) -> Vec<Vec<u8>> {
        chunks
            .into_pieces()
            .into_iter()
            .map(|piece| piece.to_vec())
            .collect()
    }

    #[test]
    fn large_buffers_are_shared_and_small_ones_gathered() {
        let large = Buffer::from_vec(vec![7u8; SHARE_BYTES]);
        let mut chunks = Chunks::new();
        chunks.write_all(b"head").unwrap();
        chunks.push_buffer(&Buffer::from_vec(vec![1u8; 4]));
        chunks.push_buffer(&large);
        chunks.write_all(b"tail").unwrap();
        assert_eq!(chunks.len(), 12 + SHARE_BYTES);
        let pieces = chunks.into_pieces();
        assert_eq!(pieces.len(), 3);
        assert_eq!(&pieces[0][..], b"head\x01\x01\x01\x01");
        assert_eq!(pieces[1].as_ptr(), large.as_ptr(), "shared, not copied");
        assert_eq!(&pieces[2][..], b"tail");
    }

    #[test]
    fn truncating_cuts_across_pieces() {
        let build = || {
            let mut chunks = Chunks::from(b"abc".to_vec());
            chunks.push_buffer(&Buffer::from_vec(vec![b'x'; SHARE_BYTES]));
            chunks.write_all(b"def").unwrap();
            chunks
        };
        let whole: Vec<u8> = pieces_of(build()).concat();
        for len in [
            0,
            2,
            3,
            4,
            3 + SHARE_BYTES,
            4 + SHARE_BYTES,
            whole.len(),
            10 * whole.len(),
        ] {
            let mut chunks = build();
            chunks.truncate(len);
            let kept = len.min(whole.len());
            assert_eq!(chunks.len(), kept, "{len}");
            let pieces = pieces_of(chunks);
            assert!(pieces.iter().all(|piece| !piece.is_empty()), "{len}");
            assert_eq!(pieces.concat(), &whole[..kept], "{len}");
        }
    }
}
