//! The shared-memory side channel (WIRE_PROTOCOL §11).
//!
//! A client on the same host may create a POSIX shared-memory segment and
//! name it in a request's metadata (`vgi_rpc.shm_segment_name`,
//! `vgi_rpc.shm_segment_size`). For that request the server attaches the
//! segment, reads input batches the client left there, and writes its own
//! data batches there too, sending small pointer batches on the pipe in
//! their place. When the segment is full, batches travel inline as usual.
//!
//! Regions follow the reference's ownership rules: the writer allocates and
//! the reader frees. The server frees a client's input region when the next
//! input arrives (its state is done with the previous one by then); the
//! client frees the server's output regions once it has read them.
//!
//! The segment belongs to the client, which can write anything into it, so
//! every header field, table entry and pointer is validated before use and
//! batches are copied out before they are decoded.

// The workspace denies unsafe code. The raw memory accesses to the mapped
// segment live in this one module, each behind a bounds check.
#[allow(unsafe_code, reason = "copies in and out of the mapped shm segment")]
mod mapping;
mod table;

use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

use vgirpc::arrow::array::RecordBatch;
use vgirpc::arrow::schema::{DataType, SchemaRef};
use vgirpc::wire::ipc::{EOS, IpcBatch, StreamReader, StreamWriter, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::{RpcError, SideChannel, SideChannels};

use mapping::Mapping;
use table::{FixedHeader, HEADER_SIZE, Table};

/// Where Linux keeps POSIX shared-memory objects.
const SHM_DIR: &str = "/dev/shm";
/// Longest file name the shm file system accepts.
const MAX_NAME_LEN: usize = 255;
/// Start alignment of regions the server allocates: Arrow's preferred
/// buffer alignment, for a client that reads the buffers in place.
const REGION_ALIGN: u64 = 64;

/// Side channels through client-owned shared-memory segments, attached per
/// request from the request's metadata.
///
/// Requests that name no segment are served without a side channel. Meant
/// for transports whose client shares this host's kernel (pipe, Unix
/// socket), never for remote clients, who could name any segment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShmSideChannels;

impl SideChannels for ShmSideChannels {
    fn attach(
        &self,
        request_metadata: &Metadata,
    ) -> Result<Option<Box<dyn SideChannel>>, RpcError> {
        let Some(name) = request_metadata.get(metadata::SHM_SEGMENT_NAME) else {
            return Ok(None);
        };
        let declared = request_metadata
            .get(metadata::SHM_SEGMENT_SIZE)
            .ok_or_else(|| {
                RpcError::value_error(format!(
                    "shm segment '{name}' is named without {}",
                    metadata::SHM_SEGMENT_SIZE
                ))
            })?;
        let declared: u64 = declared.trim().parse().map_err(|_| {
            RpcError::value_error(format!(
                "invalid {}: {declared:?}",
                metadata::SHM_SEGMENT_SIZE
            ))
        })?;
        let segment = Segment::open(name)?;
        // Like the reference, trust the size the kernel reports: the OS may
        // have rounded the client's requested size up to a page.
        if declared != segment.size() {
            tracing::debug!(
                segment = name,
                declared,
                actual = segment.size(),
                "shm segment size differs from the declared size"
            );
        }
        Ok(Some(Box::new(ShmChannel {
            segment,
            pending_free: Cell::new(None),
        })))
    }
}

/// An attached segment: its mapping and the name the client gave it.
#[derive(Debug)]
struct Segment {
    name: String,
    mapping: Mapping,
}

impl Segment {
    /// Maps the segment `name` and checks its header.
    fn open(name: &str) -> Result<Self, RpcError> {
        let path = segment_path(name)?;
        let os_error = |action: &str, err: std::io::Error| {
            RpcError::new(
                "OSError",
                format!("cannot {action} shm segment '{name}': {err}"),
            )
        };
        // The shm directory is world-writable: a symlink planted there must
        // not send us to some other file.
        let info = std::fs::symlink_metadata(&path).map_err(|e| os_error("open", e))?;
        if !info.file_type().is_file() {
            return Err(RpcError::value_error(format!(
                "shm segment '{name}' is not a regular file"
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| os_error("open", e))?;
        let size = file.metadata().map_err(|e| os_error("inspect", e))?.len();
        if size <= HEADER_SIZE {
            return Err(RpcError::value_error(format!(
                "shm segment '{name}' has {size} bytes, not more than its {HEADER_SIZE}-byte header"
            )));
        }
        let mapping = Mapping::map(&file).map_err(|e| os_error("map", e))?;
        let segment = Self {
            name: name.to_owned(),
            mapping,
        };
        let mut fixed = [0u8; table::FIXED_SIZE];
        segment.mapping.read_at(0, &mut fixed)?;
        FixedHeader::parse(&fixed).validate(segment.size())?;
        segment.table()?;
        Ok(segment)
    }

    /// Total size of the segment, header included.
    fn size(&self) -> u64 {
        self.mapping.len()
    }

    /// A validated copy of the allocation table as it is now.
    fn table(&self) -> Result<Table, RpcError> {
        let mut count = [0u8; 4];
        self.mapping.read_at(table::NUM_ALLOCS_AT, &mut count)?;
        let count = table::entry_count(u32::from_le_bytes(count))?;
        let mut entries = vec![0u8; table::entries_len(count)];
        self.mapping
            .read_at(table::FIXED_SIZE as u64, &mut entries)?;
        Table::parse(&entries, self.size())
    }

    /// Writes `table` back into the header.
    fn store(&self, table: &Table) -> Result<(), RpcError> {
        self.mapping
            .write_at(table::FIXED_SIZE as u64, &table.encode_entries())?;
        // Never more than MAX_ALLOCS entries, so the count fits.
        let count = table.entries().len() as u32;
        self.mapping
            .write_at(table::NUM_ALLOCS_AT, &count.to_le_bytes())
    }

    /// Reserves `size` bytes, or `None` when the segment has no room.
    fn allocate(&self, size: u64) -> Result<Option<u64>, RpcError> {
        let mut table = self.table()?;
        let offset = table.allocate(size, REGION_ALIGN);
        if offset.is_some() {
            self.store(&table)?;
        }
        Ok(offset)
    }

    /// Releases the region starting at `offset`.
    fn free(&self, offset: u64) -> Result<(), RpcError> {
        let mut table = self.table()?;
        table.free(offset)?;
        self.store(&table)
    }

    /// Copies `bytes` into a fresh region, or `None` when they do not fit.
    fn store_bytes(&self, bytes: &[u8]) -> Result<Option<u64>, RpcError> {
        let Some(offset) = self.allocate(bytes.len() as u64)? else {
            return Ok(None);
        };
        if let Err(err) = self.mapping.write_at(offset, bytes) {
            // The allocation lies inside the segment, so this cannot
            // happen; should it anyway, give the region back.
            let _ = self.free(offset);
            return Err(err);
        }
        Ok(Some(offset))
    }
}

/// Path of the segment `name`, refusing names that would leave the shm
/// directory.
fn segment_path(name: &str) -> Result<PathBuf, RpcError> {
    // POSIX shm names may carry one leading slash; Python's reports none.
    let bare = name.strip_prefix('/').unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.len() <= MAX_NAME_LEN
        && bare != "."
        && bare != ".."
        && !bare.contains(['/', '\0']);
    if !valid {
        return Err(RpcError::value_error(format!(
            "invalid shm segment name {name:?}"
        )));
    }
    Ok(Path::new(SHM_DIR).join(bare))
}

/// The side channel of one request.
#[derive(Debug)]
struct ShmChannel {
    segment: Segment,
    /// Region of the last input read from the segment, freed when the next
    /// input arrives: the stream state has finished with it by then.
    pending_free: Cell<Option<u64>>,
}

impl SideChannel for ShmChannel {
    fn resolve(&self, batch: IpcBatch) -> Result<IpcBatch, RpcError> {
        let (batch, region) = if is_pointer(&batch) {
            let (batch, offset) = self.read_pointer(batch)?;
            (batch, Some(offset))
        } else {
            (batch, None)
        };
        if let Some(previous) = self.pending_free.replace(region) {
            self.segment.free(previous)?;
        }
        Ok(batch)
    }

    fn offload(&self, batch: RecordBatch, metadata: Metadata) -> (RecordBatch, Metadata) {
        // Zero-row batches (logs, errors, empty results) stay on the pipe:
        // they are small, and readers classify them by their metadata.
        if batch.num_rows() == 0 {
            return (batch, metadata);
        }
        match self.write_batch(&batch) {
            Ok(Some((offset, length))) => {
                let pointer = empty_batch(batch.schema_ref());
                let metadata = metadata
                    .with(metadata::SHM_OFFSET, offset.to_string())
                    .with(metadata::SHM_LENGTH, length.to_string());
                (pointer, metadata)
            }
            Ok(None) => (batch, metadata),
            Err(err) => {
                tracing::warn!(
                    segment = %self.segment.name,
                    error = %err,
                    "cannot write a batch to shared memory; sending it inline"
                );
                (batch, metadata)
            }
        }
    }
}

impl ShmChannel {
    /// Reads the batch a pointer batch refers to, returning it with the
    /// pointer keys replaced by the segment's name, and the region's offset.
    fn read_pointer(&self, pointer: IpcBatch) -> Result<(IpcBatch, u64), RpcError> {
        let IpcBatch {
            batch,
            mut metadata,
        } = pointer;
        let offset = pointer_field(&metadata, metadata::SHM_OFFSET)?;
        let length = pointer_field(&metadata, metadata::SHM_LENGTH)?;
        let region = (offset >= HEADER_SIZE)
            .then(|| self.segment.mapping.region(offset, length))
            .flatten()
            .ok_or_else(|| {
                RpcError::value_error(format!(
                    "shm pointer out of bounds: offset {offset} length {length} segment size {}",
                    self.segment.size()
                ))
            })?;
        let resolved = decode(region, batch.schema_ref()).map_err(|err| {
            RpcError::value_error(format!(
                "cannot read the shm batch at offset {offset} length {length}: {}",
                err.message()
            ))
        })?;
        metadata.remove(metadata::SHM_OFFSET);
        metadata.remove(metadata::SHM_LENGTH);
        metadata.insert(metadata::SHM_SOURCE, self.segment.name.as_str());
        let resolved = IpcBatch {
            batch: resolved,
            metadata,
        };
        Ok((resolved, offset))
    }

    /// Stores `batch` in the segment, returning its region's offset and the
    /// bytes written, or `None` when the segment has no room.
    fn write_batch(&self, batch: &RecordBatch) -> Result<Option<(u64, usize)>, RpcError> {
        let bytes = encode(batch)?;
        Ok(self
            .segment
            .store_bytes(&bytes)?
            .map(|offset| (offset, bytes.len())))
    }
}

/// Whether `batch` points into the segment: zero rows and an offset key,
/// unless log keys make it a log batch.
fn is_pointer(batch: &IpcBatch) -> bool {
    batch.batch.num_rows() == 0
        && batch.metadata.contains(metadata::SHM_OFFSET)
        && !batch.metadata.contains(metadata::LOG_LEVEL)
}

/// A decimal pointer field of a pointer batch.
fn pointer_field(metadata: &Metadata, key: &str) -> Result<u64, RpcError> {
    let value = metadata
        .get(key)
        .ok_or_else(|| RpcError::value_error(format!("shm pointer batch lacks {key}")))?;
    value
        .trim()
        .parse()
        .map_err(|_| RpcError::value_error(format!("shm pointer has an invalid {key}: {value:?}")))
}

/// Whether a top-level column is dictionary-encoded, which changes how the
/// batch is laid out in the segment (WIRE_PROTOCOL §11).
fn has_dictionary_columns(schema: &SchemaRef) -> bool {
    schema
        .fields()
        .iter()
        .any(|field| matches!(field.data_type(), DataType::Dictionary(..)))
}

/// Arrow encoding and decoding failures, reported with the wire error's text.
fn wire_error(err: vgirpc::wire::WireError) -> RpcError {
    RpcError::value_error(err.to_string())
}

/// The schema message that opens an IPC stream on `schema`.
fn schema_message(schema: &SchemaRef) -> Result<Vec<u8>, RpcError> {
    let mut stream = StreamWriter::try_new(Vec::new(), schema)
        .and_then(StreamWriter::finish)
        .map_err(wire_error)?;
    stream.truncate(stream.len() - EOS.len());
    Ok(stream)
}

/// The bytes stored in the segment for `batch`: a complete IPC stream, or
/// for dictionary-encoded batches only the dictionary and record batch
/// messages, as the reference reader expects.
fn encode(batch: &RecordBatch) -> Result<Vec<u8>, RpcError> {
    let schema = batch.schema_ref();
    let stream = write_stream_bytes(schema, [(batch, &Metadata::new())]).map_err(wire_error)?;
    if !has_dictionary_columns(schema) {
        return Ok(stream);
    }
    let prefix = schema_message(schema)?;
    stream
        .strip_prefix(prefix.as_slice())
        .and_then(|rest| rest.strip_suffix(&EOS[..]))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| RpcError::runtime_error("unexpected ipc stream layout for a shm batch"))
}

/// Decodes a region written by [`encode`] (or a peer) against the pointer
/// batch's `schema`.
fn decode(region: mapping::Region<'_>, schema: &SchemaRef) -> Result<RecordBatch, RpcError> {
    if has_dictionary_columns(schema) {
        let prefix = schema_message(schema)?;
        first_batch(prefix.as_slice().chain(region).chain(&EOS[..]))
    } else {
        first_batch(region)
    }
}

fn first_batch(reader: impl Read) -> Result<RecordBatch, RpcError> {
    let mut stream = StreamReader::open(reader).map_err(wire_error)?;
    stream
        .next_batch()
        .map_err(wire_error)?
        .map(|batch| batch.batch)
        .ok_or_else(|| RpcError::value_error("the region holds no record batch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_stay_inside_the_shm_directory() {
        assert_eq!(
            segment_path("psm_1a2b").unwrap(),
            Path::new("/dev/shm/psm_1a2b")
        );
        assert_eq!(
            segment_path("/psm_1a2b").unwrap(),
            Path::new("/dev/shm/psm_1a2b")
        );
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "/",
            ".",
            "..",
            "/..",
            "a/b",
            "../etc/passwd",
            "a\0b",
            &long,
        ] {
            let err = segment_path(bad).unwrap_err();
            assert!(err.message().contains("invalid shm segment name"), "{err}");
        }
    }
}
