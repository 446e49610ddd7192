//! A mapped shared-memory segment, accessed only by bounds-checked copies.
//!
//! The segment's layout (header, allocation table, regions) is
//! `vgirpc_wire::shm`; this crate is the memory underneath it, shared by the
//! client, which creates segments, and the pipe transport, which attaches to
//! them. It is the side channel's only unsafe code.
//!
//! No reference into the mapping is ever handed out: the peer process can
//! write the same pages, so a Rust reference to them could change
//! underneath us. Every access is a copy between the mapping and private
//! memory, after checking that the whole range lies inside the mapping.
//! The lockstep protocol keeps the peer away while this side works; a peer
//! that writes anyway can only make us copy torn bytes, which are then
//! validated like any other peer data. A peer that shrinks the file while
//! it is mapped makes the next access fault (SIGBUS): that ends the
//! process, but cannot corrupt its memory.
//!
//! ```
//! use std::io::Read;
//!
//! let file = tempfile_of(4096);
//! let mapping = vgirpc_shm::Mapping::map(&file)?;
//! mapping.write_at(100, b"hello")?;
//! let mut word = [0u8; 5];
//! mapping.read_at(100, &mut word)?;
//! assert_eq!(&word, b"hello");
//! let mut region = String::new();
//! mapping.region(100, 5).expect("inside").read_to_string(&mut region)?;
//! assert_eq!(region, "hello");
//! assert!(mapping.read_at(4094, &mut word).is_err());
//! assert_eq!(mapping.copy_out(100, 5)?, b"hello");
//! mapping.write_pieces(200, &[&b"vgi"[..], b"-rpc"])?;
//! assert_eq!(mapping.copy_out(200, 7)?, b"vgi-rpc");
//! assert!(mapping.write_pieces(4090, &[&b"abc"[..], b"defg"]).is_err());
//! assert!(mapping.copy_out(4092, 5).is_err());
//! assert!(mapping.copy_out(u64::MAX, 1).is_err());
//! # fn tempfile_of(len: u64) -> std::fs::File {
//! #     let path = std::env::temp_dir().join(format!("vgirpc-shm-doc-{}", std::process::id()));
//! #     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
//! #     std::fs::remove_file(&path).unwrap();
//! #     file.set_len(len).unwrap();
//! #     file
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
// The workspace denies unsafe code; the copies below are why this crate
// exists, each behind a bounds check.
#![allow(unsafe_code, reason = "copies in and out of the mapped shm segment")]

use std::fs::File;
use std::io::Read;

use memmap2::MmapRaw;

/// A range that does not lie inside the mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shm access out of bounds: offset {offset} length {len} segment size {size}")]
#[non_exhaustive]
pub struct OutOfBounds {
    /// Start of the refused range.
    pub offset: u64,
    /// Its length.
    pub len: u64,
    /// Size of the mapping.
    pub size: u64,
}

/// A shared, writable mapping of a whole segment file.
pub struct Mapping {
    raw: MmapRaw,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.raw.len())
            .finish()
    }
}

impl Mapping {
    /// Maps all of `file` (opened for reading and writing) shared.
    pub fn map(file: &File) -> std::io::Result<Self> {
        Ok(Self {
            raw: MmapRaw::map_raw(file)?,
        })
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> u64 {
        // usize is at most 64 bits on every supported target.
        self.raw.len() as u64
    }

    /// Whether the mapping has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.raw.len() == 0
    }

    /// Index of the first byte of `offset..offset + len`, if the range lies
    /// inside the mapping.
    fn start_of(&self, offset: u64, len: usize) -> Result<usize, OutOfBounds> {
        let len = len as u64;
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(offset as usize),
            _ => Err(OutOfBounds {
                offset,
                len,
                size: self.len(),
            }),
        }
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        let start = self.start_of(offset, buf.len())?;
        // SAFETY: `start_of` checked that `start..start + buf.len()` lies
        // inside the mapping, which stays mapped for as long as `self`
        // lives. `buf` is private memory: no reference into the mapping is
        // ever created, so the two ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.raw.as_ptr().add(start),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
        Ok(())
    }

    /// Copies `len` bytes starting at `offset` out of the segment into a
    /// new vector, without first zeroing it as [`Mapping::read_at`]'s
    /// caller must.
    pub fn copy_out(&self, offset: u64, len: usize) -> Result<Vec<u8>, OutOfBounds> {
        let start = self.start_of(offset, len)?;
        let mut out = Vec::with_capacity(len);
        // SAFETY: `start_of` checked that `start..start + len` lies inside
        // the live mapping; `out` is a fresh private allocation of at least
        // `len` bytes, so the ranges cannot overlap. After the copy the
        // first `len` bytes of `out` are initialised, which makes
        // `set_len(len)` sound.
        unsafe {
            std::ptr::copy_nonoverlapping(self.raw.as_ptr().add(start), out.as_mut_ptr(), len);
            out.set_len(len);
        }
        Ok(out)
    }

    /// Copies `data` into the segment starting at `offset`.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), OutOfBounds> {
        let start = self.start_of(offset, data.len())?;
        // SAFETY: as in `read_at`: the destination range was bounds-checked
        // against a live, writable shared mapping, and `data` is private
        // memory that cannot overlap it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.raw.as_mut_ptr().add(start),
                data.len(),
            );
        }
        Ok(())
    }

    /// Copies `pieces`, one after another, into the segment starting at
    /// `offset`; an out-of-bounds piece stops the copy there.
    pub fn write_pieces<P: AsRef<[u8]>>(
        &self,
        offset: u64,
        pieces: &[P],
    ) -> Result<(), OutOfBounds> {
        let mut at = offset;
        for piece in pieces {
            let piece = piece.as_ref();
            self.write_at(at, piece)?;
            // `write_at` checked that `at + piece.len()` is within the mapping.
            at += piece.len() as u64;
        }
        Ok(())
    }

    /// A reader over `offset..offset + len`, refusing ranges that do not
    /// lie entirely inside the mapping.
    pub fn region(&self, offset: u64, len: u64) -> Option<Region<'_>> {
        let end = offset.checked_add(len)?;
        (end <= self.len()).then_some(Region {
            mapping: self,
            position: offset,
            end,
        })
    }
}

/// Reads a checked range of the mapping as a byte stream.
#[derive(Debug)]
pub struct Region<'a> {
    mapping: &'a Mapping,
    position: u64,
    end: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let remaining = self.end - self.position;
        let n = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
        self.mapping
            .read_at(self.position, &mut buf[..n])
            .map_err(std::io::Error::other)?;
        self.position += n as u64;
        Ok(n)
    }
}
