//! Bounds-checked copies in and out of a mapped segment.
//!
//! This is the only code that touches the mapping's memory. It never hands
//! out a reference into it: the client process can write the same pages, so
//! a Rust reference to them could change underneath us. Every access is a
//! copy between the mapping and private memory, after checking that the
//! whole range lies inside the mapping.
//!
//! The lockstep protocol keeps the client away from the segment while the
//! server works on a request; a client that writes anyway can only make us
//! copy torn bytes, which are then validated like any other peer data. A
//! client that shrinks the file while it is mapped makes the next access
//! fault (SIGBUS): that ends the worker, but cannot corrupt its memory.

use std::fs::File;
use std::io::Read;

use memmap2::MmapRaw;
use vgirpc::RpcError;

/// A shared, writable mapping of a whole segment file.
pub(super) struct Mapping {
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
    pub(super) fn map(file: &File) -> std::io::Result<Self> {
        Ok(Self {
            raw: MmapRaw::map_raw(file)?,
        })
    }

    /// Size of the mapping in bytes.
    pub(super) fn len(&self) -> u64 {
        // usize is at most 64 bits on every supported target.
        self.raw.len() as u64
    }

    /// Index of the first byte of `offset..offset + len`, if the range lies
    /// inside the mapping.
    fn start_of(&self, offset: u64, len: usize) -> Result<usize, RpcError> {
        let end = u64::try_from(len)
            .ok()
            .and_then(|len| offset.checked_add(len));
        match end {
            Some(end) if end <= self.len() => Ok(offset as usize),
            _ => Err(RpcError::value_error(format!(
                "shm access out of bounds: offset {offset} length {len} segment size {}",
                self.len()
            ))),
        }
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    pub(super) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), RpcError> {
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

    /// Copies `data` into the segment starting at `offset`.
    pub(super) fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), RpcError> {
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

    /// A reader over `offset..offset + len`, refusing ranges that do not
    /// lie entirely inside the mapping.
    pub(super) fn region(&self, offset: u64, len: u64) -> Option<Region<'_>> {
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
pub(super) struct Region<'a> {
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
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        self.position += n as u64;
        Ok(n)
    }
}
