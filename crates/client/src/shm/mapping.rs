//! Bounds-checked copies in and out of the mapped segment.
//!
//! This is the only code that touches the mapping's memory. It never hands
//! out a reference into it: the server process writes the same pages, so a
//! Rust reference to them could change underneath us. Every access is a
//! copy between the mapping and private memory, after checking that the
//! whole range lies inside the mapping.
//!
//! The lockstep protocol keeps the server away from the segment while the
//! client works on it; a server that writes anyway can only make us copy
//! torn bytes, which are validated like any other peer data.

use std::fs::File;

use memmap2::MmapRaw;

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

/// A range that does not lie inside the mapping.
#[derive(Debug)]
pub(super) struct OutOfBounds {
    pub(super) offset: u64,
    pub(super) len: usize,
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
    fn start_of(&self, offset: u64, len: usize) -> Result<usize, OutOfBounds> {
        let end = u64::try_from(len)
            .ok()
            .and_then(|len| offset.checked_add(len));
        match end {
            Some(end) if end <= self.len() => Ok(offset as usize),
            _ => Err(OutOfBounds { offset, len }),
        }
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    pub(super) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), OutOfBounds> {
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
    pub(super) fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), OutOfBounds> {
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
}
