//! The shared-memory segment layout (WIRE_PROTOCOL §11): its header, the
//! allocation table in it, the bytes a batch occupies in a region, and the
//! pointer batches that name a region.
//!
//! Both peers of the side channel use this: the client, which creates and
//! owns the segment, and the server, which attaches to it per request. The
//! segment itself (creating, mapping, copying in and out) belongs to each
//! side; this module only works on private copies of the bytes, and
//! validates them before use, because a peer can write anything into the
//! header and none of it may steer an access outside the segment.

mod header;
mod pointer;
mod region;

pub use header::{Allocation, FixedHeader, Table, entries_len, entry_count};
pub use pointer::{is_pointer, pointer_metadata, pointer_region, resolved_metadata};
pub use region::{
    MIN_OFFLOAD_BYTES, decode_region, decode_region_bytes, encode_region, worth_offloading,
};

/// Bytes reserved for the header; the data region starts right after it.
pub const HEADER_SIZE: u64 = 65_536;
/// Identifies a vgi-rpc segment.
pub const MAGIC: [u8; 4] = *b"VGIS";
/// The only header layout this crate understands.
pub const VERSION: u32 = 1;
/// Size of the fixed fields before the allocation entries.
pub const FIXED_SIZE: usize = 24;
/// Byte offset of the `num_allocs` field.
pub const NUM_ALLOCS_AT: u64 = 16;
/// Size of one `(offset, length)` allocation entry.
const ENTRY_SIZE: usize = 16;
/// As many entries as fit in the header.
pub const MAX_ALLOCS: usize = (HEADER_SIZE as usize - FIXED_SIZE) / ENTRY_SIZE;

/// Why segment bytes were refused: a corrupt header or table, a pointer
/// outside the segment, or a region that holds no batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShmError(String);

impl ShmError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The explanation, without any prefix.
    pub fn message(&self) -> &str {
        &self.0
    }
}
