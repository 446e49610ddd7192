//! The shared-memory side channel, client side (WIRE_PROTOCOL §11).
//!
//! The client creates and owns a POSIX shared-memory segment and names it
//! in every request's metadata (`vgi_rpc.shm_segment_name`,
//! `vgi_rpc.shm_segment_size`). The server attaches to it for the request
//! and may write its data batches there, sending small pointer batches on
//! the connection in their place; the client copies each one out and frees
//! its region at once (the reader frees, as in the reference, and nothing
//! keeps pointing into the segment after the copy). Stream inputs with rows
//! go the other way when they fit: the client writes them into the segment
//! and sends a pointer, and the server frees the region when the next input
//! arrives. Whatever does not fit travels inline as usual.

use std::fs::OpenOptions;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use vgirpc_shm::{Mapping, OutOfBounds};
use vgirpc_wire::ipc::IpcBatch;
use vgirpc_wire::log::empty_batch;
use vgirpc_wire::metadata::{self, Metadata};
use vgirpc_wire::shm::{
    self as layout, FIXED_SIZE, FixedHeader, HEADER_SIZE, NUM_ALLOCS_AT, ShmError, Table,
};

use crate::ClientError;
use crate::transport::Connection;

/// Where Linux keeps POSIX shared-memory objects.
const SHM_DIR: &str = "/dev/shm";
/// Start alignment of the regions the client allocates: Arrow's preferred
/// buffer alignment, for a server that reads the buffers in place.
const REGION_ALIGN: u64 = 64;

/// A shared-memory segment this process created and owns: a 64 KiB header
/// with the allocation table, then the data region.
///
/// Dropping it unmaps and removes it. One segment serves one connection at
/// a time (the lockstep protocol is what keeps the two peers from touching
/// it at once).
#[derive(Debug)]
pub struct ShmSegment {
    name: String,
    path: PathBuf,
    mapping: Mapping,
}

impl ShmSegment {
    /// Creates a segment of `size` bytes in `/dev/shm`, readable and
    /// writable by this user only. `size` includes the 64 KiB header, so it
    /// must be larger than that; what is left is room for batches.
    pub fn create(size: u64) -> Result<Self, ClientError> {
        if size <= HEADER_SIZE {
            return Err(ClientError::SharedMemory(format!(
                "a segment needs more than its {HEADER_SIZE}-byte header, got {size} bytes"
            )));
        }
        let name = unique_name();
        let path = PathBuf::from(SHM_DIR).join(&name);
        let fail = |action: &str, err: std::io::Error| {
            ClientError::SharedMemory(format!("cannot {action} {}: {err}", path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| fail("create", e))?;
        // From here on the file exists; dropping `segment` removes it.
        let setup = || -> Result<Mapping, ClientError> {
            file.set_len(size).map_err(|e| fail("size", e))?;
            Mapping::map(&file).map_err(|e| fail("map", e))
        };
        let mapping = match setup() {
            Ok(mapping) => mapping,
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                return Err(err);
            }
        };
        let segment = Self {
            name,
            path,
            mapping,
        };
        segment.write(0, &FixedHeader::new(segment.size()).encode())?;
        Ok(segment)
    }

    /// The name servers attach by (without a leading slash).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Total size in bytes, header included.
    pub fn size(&self) -> u64 {
        self.mapping.len()
    }

    /// How many regions are allocated now: after a call, at most the last
    /// input of a stream, which nobody reads again until the next call
    /// frees it.
    pub fn regions_in_use(&self) -> Result<usize, ClientError> {
        Ok(self.table()?.entries().len())
    }

    /// Frees every region.
    fn reset(&self) -> Result<(), ClientError> {
        self.write(NUM_ALLOCS_AT, &0u32.to_le_bytes())
    }

    /// Makes the request of a new call name this segment, which starts the
    /// call empty: between calls no region is in use (the server frees
    /// what it read before answering, the client frees what it read at
    /// once), except the last input of a stream, which nobody reads again.
    pub(crate) fn begin_call(&self, request: &mut Metadata) -> Result<(), ClientError> {
        self.reset()?;
        request.insert(metadata::SHM_SEGMENT_NAME, self.name());
        request.insert(metadata::SHM_SEGMENT_SIZE, self.size().to_string());
        Ok(())
    }

    /// A stream input to send through the segment: the pointer batch to
    /// send in its place, or `None` when it travels inline (too small to
    /// be worth it, or no room left).
    pub(crate) fn offload(
        &self,
        batch: &RecordBatch,
    ) -> Result<Option<(RecordBatch, Metadata)>, ClientError> {
        if layout::worth_offloading(batch) {
            self.put(batch)
        } else {
            Ok(None)
        }
    }

    /// Writes `batch` into a fresh region and returns the pointer batch
    /// to send in its place, or `None` when the segment has no room.
    pub(crate) fn put(
        &self,
        batch: &RecordBatch,
    ) -> Result<Option<(RecordBatch, Metadata)>, ClientError> {
        let bytes = layout::encode_region(batch).map_err(corrupt)?;
        let len = bytes.len() as u64;
        let mut table = self.table()?;
        let Some(offset) = table.allocate(len, REGION_ALIGN) else {
            return Ok(None);
        };
        self.store(&table)?;
        self.mapping
            .write_pieces(offset, &bytes.into_pieces())
            .map_err(|e| self.bounds(e))?;
        let md = layout::pointer_metadata(&Metadata::new(), offset, len);
        Ok(Some((empty_batch(batch.schema_ref()), md)))
    }

    /// Copies out the batch a server pointer batch refers to and frees its
    /// region; the batch comes back with the pointer's metadata, minus the
    /// region keys, naming this segment.
    pub(crate) fn take(&self, pointer: IpcBatch) -> Result<IpcBatch, ClientError> {
        let IpcBatch { batch, metadata } = pointer;
        let (offset, length) = layout::pointer_region(&metadata, self.size()).map_err(corrupt)?;
        let length = usize::try_from(length).map_err(|_| {
            ClientError::SharedMemory(format!("a {length}-byte region cannot be read here"))
        })?;
        let bytes = self
            .mapping
            .copy_out(offset, length)
            .map_err(|e| self.bounds(e))?;
        let resolved =
            layout::decode_region_bytes(bytes.into(), batch.schema_ref()).map_err(|e| {
                ClientError::SharedMemory(format!(
                    "cannot read the batch at offset {offset} length {length}: {e}"
                ))
            })?;
        let mut table = self.table()?;
        table.free(offset).map_err(corrupt)?;
        self.store(&table)?;
        Ok(IpcBatch {
            batch: resolved,
            metadata: layout::resolved_metadata(metadata, &self.name),
        })
    }

    /// A validated copy of the allocation table as it is now.
    fn table(&self) -> Result<Table, ClientError> {
        let mut fixed = [0u8; FIXED_SIZE];
        self.read(0, &mut fixed)?;
        let count = FixedHeader::parse(&fixed).entry_count().map_err(corrupt)?;
        let mut entries = vec![0u8; layout::entries_len(count)];
        self.read(FIXED_SIZE as u64, &mut entries)?;
        Table::parse(&entries, self.size()).map_err(corrupt)
    }

    /// Writes `table` back into the header.
    fn store(&self, table: &Table) -> Result<(), ClientError> {
        self.write(FIXED_SIZE as u64, &table.encode_entries())?;
        // Never more than MAX_ALLOCS entries, so the count fits.
        let count = table.entries().len() as u32;
        self.write(NUM_ALLOCS_AT, &count.to_le_bytes())
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), ClientError> {
        self.mapping
            .read_at(offset, buf)
            .map_err(|e| self.bounds(e))
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), ClientError> {
        self.mapping
            .write_at(offset, data)
            .map_err(|e| self.bounds(e))
    }

    fn bounds(&self, err: OutOfBounds) -> ClientError {
        ClientError::SharedMemory(err.to_string())
    }
}

impl Drop for ShmSegment {
    fn drop(&mut self) {
        // The segment is ours: nobody else removes it. A failure leaves a
        // file in /dev/shm, which nothing here can do more about.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn corrupt(err: ShmError) -> ClientError {
    ClientError::SharedMemory(err.message().to_owned())
}

/// A name no other segment has: this process's id, a per-process counter
/// and a random part (so a stale file of a dead process with the same id
/// is not an obstacle).
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let serial = NEXT.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one(serial);
    format!("vgirpc_{}_{serial}_{random:016x}", std::process::id())
}

/// A byte-stream connection with a shared-memory side channel: the pipe
/// protocol over `C`, with batches travelling through the segment.
///
/// Made by [`Client::with_shm`](crate::Client::with_shm). The server must
/// run on this host and support the side channel (workers serving the pipe
/// or a Unix socket do; a server that ignores the segment keys simply
/// answers inline).
#[derive(Debug)]
pub struct ShmTransport<C: Connection> {
    connection: C,
    segment: ShmSegment,
}

impl<C: Connection> ShmTransport<C> {
    /// `connection` with `segment` as its side channel.
    pub fn new(connection: C, segment: ShmSegment) -> Self {
        Self {
            connection,
            segment,
        }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// The segment.
    pub fn segment(&self) -> &ShmSegment {
        &self.segment
    }

    /// The connection and the segment, apart.
    pub fn into_parts(self) -> (C, ShmSegment) {
        (self.connection, self.segment)
    }

    pub(crate) fn parts(&mut self) -> (&mut C, &ShmSegment) {
        (&mut self.connection, &self.segment)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn ints(values: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap()
    }

    #[test]
    fn a_segment_is_created_formatted_and_removed() {
        let segment = ShmSegment::create(HEADER_SIZE + 4096).unwrap();
        let path = PathBuf::from(SHM_DIR).join(segment.name());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_SIZE + 4096);
        let mut fixed = [0u8; FIXED_SIZE];
        segment.read(0, &mut fixed).unwrap();
        FixedHeader::parse(&fixed).validate(segment.size()).unwrap();
        drop(segment);
        assert!(!path.exists(), "dropping the segment removes it");

        let err = ShmSegment::create(HEADER_SIZE).unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn batches_put_in_are_taken_out_and_freed() {
        let segment = ShmSegment::create(HEADER_SIZE + 64 * 1024).unwrap();
        let batch = ints(vec![1, 2, 3]);
        let (pointer, md) = segment.put(&batch).unwrap().unwrap();
        assert_eq!(pointer.num_rows(), 0);
        assert!(layout::is_pointer(&IpcBatch {
            batch: pointer.clone(),
            metadata: md.clone(),
        }));
        assert_eq!(segment.regions_in_use().unwrap(), 1);

        let taken = segment
            .take(IpcBatch {
                batch: pointer,
                metadata: md,
            })
            .unwrap();
        assert_eq!(taken.batch, batch);
        assert_eq!(
            taken.metadata.get(metadata::SHM_SOURCE),
            Some(segment.name())
        );
        assert_eq!(segment.regions_in_use().unwrap(), 0, "freed");
    }

    #[test]
    fn a_full_segment_declines_and_reset_frees_everything() {
        let segment = ShmSegment::create(HEADER_SIZE + 2048).unwrap();
        assert!(segment.put(&ints(vec![7; 1000])).unwrap().is_none());
        assert!(segment.put(&ints(vec![7])).unwrap().is_some());
        assert!(segment.put(&ints(vec![7])).unwrap().is_some());
        assert_eq!(segment.regions_in_use().unwrap(), 2);
        segment.reset().unwrap();
        assert_eq!(segment.regions_in_use().unwrap(), 0);
    }

    #[test]
    fn pointers_outside_the_segment_are_refused() {
        let segment = ShmSegment::create(HEADER_SIZE + 1024).unwrap();
        let batch = ints(vec![]);
        for (offset, length) in [(0, 10), (HEADER_SIZE, 2048), (u64::MAX, 1)] {
            let md = layout::pointer_metadata(&Metadata::new(), offset, length);
            let err = segment
                .take(IpcBatch {
                    batch: batch.clone(),
                    metadata: md,
                })
                .unwrap_err();
            assert!(err.to_string().contains("out of bounds"), "{err}");
        }
    }
}
