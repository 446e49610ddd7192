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
//!
//! A client names the same segment in every request, so the mapping is kept
//! between requests on the serving thread rather than made and torn down
//! each time (opening, mapping and faulting the pages back in cost more
//! than a small call). Each request still checks, with one `stat`, that the
//! name leads to the same file at the same size, and re-validates the
//! header; the mapping is let go when the connection ends.

use std::cell::{Cell, RefCell};
use std::fs::{Metadata as FileInfo, OpenOptions};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use vgirpc::RpcError;
use vgirpc::arrow::array::RecordBatch;
use vgirpc::transport::{SideChannel, SideChannels};
use vgirpc::wire::ipc::{EAGER_RESERVE_BYTES, IpcBatch};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::shm::{
    self as layout, FIXED_SIZE, FixedHeader, HEADER_SIZE, NUM_ALLOCS_AT, ShmError, Table,
};
use vgirpc_shm::{Mapping, OutOfBounds};

/// Where Linux keeps POSIX shared-memory objects.
const SHM_DIR: &str = "/dev/shm";
/// Longest file name the shm file system accepts.
const MAX_NAME_LEN: usize = 255;
/// Start alignment of regions the server allocates: Arrow's preferred
/// buffer alignment, for a client that reads the buffers in place.
const REGION_ALIGN: u64 = 64;

thread_local! {
    /// The segment last attached on this thread, kept for the next request
    /// of the same connection.
    static ATTACHED: RefCell<Option<Rc<Segment>>> = const { RefCell::new(None) };
}

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
        let segment = attach_segment(name)?;
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

    fn connection_closed(&self) {
        ATTACHED.set(None);
    }
}

/// The segment `name`, reusing this thread's kept mapping when the name
/// still leads to the same file at the same size.
fn attach_segment(name: &str) -> Result<Rc<Segment>, RpcError> {
    let path = segment_path(name)?;
    // The shm directory is world-writable: a symlink planted there must not
    // send us to some other file, so the link itself is inspected.
    let info = std::fs::symlink_metadata(&path).map_err(|e| os_error(name, "open", e))?;
    if !info.file_type().is_file() {
        return Err(RpcError::value_error(format!(
            "shm segment '{name}' is not a regular file"
        )));
    }
    let kept = ATTACHED.with_borrow(|kept| kept.clone());
    if let Some(segment) = kept.filter(|kept| kept.is(name, &info)) {
        segment.validate_header()?;
        return Ok(segment);
    }
    // Unmapped before the replacement is mapped, not after.
    ATTACHED.set(None);
    let segment = Rc::new(Segment::open(name, &path, &info)?);
    ATTACHED.set(Some(Rc::clone(&segment)));
    Ok(segment)
}

fn os_error(name: &str, action: &str, err: std::io::Error) -> RpcError {
    RpcError::new(
        "OSError",
        format!("cannot {action} shm segment '{name}': {err}"),
    )
}

/// An attached segment: its mapping, the name the client gave it, and the
/// file it was mapped from.
#[derive(Debug)]
struct Segment {
    name: String,
    mapping: Mapping,
    /// Device and inode of the mapped file.
    file_id: (u64, u64),
}

impl Segment {
    /// Maps the segment `name` (the regular file `info` describes at
    /// `path`) and checks its header.
    fn open(name: &str, path: &Path, info: &FileInfo) -> Result<Self, RpcError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| os_error(name, "open", e))?;
        let opened = file.metadata().map_err(|e| os_error(name, "inspect", e))?;
        if (opened.dev(), opened.ino()) != (info.dev(), info.ino()) {
            return Err(RpcError::value_error(format!(
                "shm segment '{name}' was replaced while being opened"
            )));
        }
        let size = opened.len();
        if size <= HEADER_SIZE {
            return Err(RpcError::value_error(format!(
                "shm segment '{name}' has {size} bytes, not more than its {HEADER_SIZE}-byte header"
            )));
        }
        let mapping = Mapping::map(&file).map_err(|e| os_error(name, "map", e))?;
        let segment = Self {
            name: name.to_owned(),
            mapping,
            file_id: (opened.dev(), opened.ino()),
        };
        segment.validate_header()?;
        Ok(segment)
    }

    /// Whether this is the mapping of `name` as `info` describes it now.
    fn is(&self, name: &str, info: &FileInfo) -> bool {
        self.name == name && self.file_id == (info.dev(), info.ino()) && self.size() == info.len()
    }

    /// Checks the fixed header. The allocation table is checked where it is
    /// used, not here: the client rewrites it whenever it releases one of
    /// our outputs, which can overlap a request, and a table caught
    /// mid-update must cost at most an inline batch, never the call.
    fn validate_header(&self) -> Result<(), RpcError> {
        let mut fixed = [0u8; FIXED_SIZE];
        self.mapping.read_at(0, &mut fixed).map_err(out_of_bounds)?;
        FixedHeader::parse(&fixed)
            .validate(self.size())
            .map_err(shm_error)
    }

    /// Total size of the segment, header included.
    fn size(&self) -> u64 {
        self.mapping.len()
    }

    /// A validated copy of the allocation table as it is now.
    fn table(&self) -> Result<Table, RpcError> {
        let mut count = [0u8; 4];
        self.mapping
            .read_at(NUM_ALLOCS_AT, &mut count)
            .map_err(out_of_bounds)?;
        let count = layout::entry_count(u32::from_le_bytes(count)).map_err(shm_error)?;
        let mut entries = vec![0u8; layout::entries_len(count)];
        self.mapping
            .read_at(FIXED_SIZE as u64, &mut entries)
            .map_err(out_of_bounds)?;
        Table::parse(&entries, self.size()).map_err(shm_error)
    }

    /// Writes `table` back into the header.
    fn store(&self, table: &Table) -> Result<(), RpcError> {
        self.mapping
            .write_at(FIXED_SIZE as u64, &table.encode_entries())
            .map_err(out_of_bounds)?;
        // Never more than MAX_ALLOCS entries, so the count fits.
        let count = table.entries().len() as u32;
        self.mapping
            .write_at(NUM_ALLOCS_AT, &count.to_le_bytes())
            .map_err(out_of_bounds)
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
        table.free(offset).map_err(shm_error)?;
        self.store(&table)
    }

    /// Copies `pieces`, one after another, into a fresh region; `None`
    /// when they do not fit.
    fn store_bytes<P: AsRef<[u8]>>(&self, pieces: &[P]) -> Result<Option<u64>, RpcError> {
        let len: usize = pieces.iter().map(|piece| piece.as_ref().len()).sum();
        let Some(offset) = self.allocate(len as u64)? else {
            return Ok(None);
        };
        if let Err(err) = self.mapping.write_pieces(offset, pieces) {
            // The allocation lies inside the segment, so this cannot
            // happen; should it anyway, give the region back.
            let _ = self.free(offset);
            return Err(out_of_bounds(err));
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
    segment: Rc<Segment>,
    /// Region of the last input read from the segment, freed when the next
    /// input arrives: the stream state has finished with it by then.
    pending_free: Cell<Option<u64>>,
}

impl SideChannel for ShmChannel {
    fn resolve(&self, batch: IpcBatch) -> Result<IpcBatch, RpcError> {
        let (batch, region) = if layout::is_pointer(&batch) {
            let (batch, offset) = self.read_pointer(batch)?;
            (batch, Some(offset))
        } else {
            (batch, None)
        };
        if let Some(previous) = self.pending_free.replace(region)
            && let Err(err) = self.segment.free(previous)
        {
            // The client edits the same allocation table (it frees our
            // outputs when it is done with them), so a table caught
            // mid-update must not fail the call: the region stays allocated
            // until the client resets the segment.
            tracing::warn!(
                segment = %self.segment.name,
                error = %err,
                "cannot free a shared-memory input region"
            );
        }
        Ok(batch)
    }

    fn offload(&self, batch: RecordBatch, metadata: Metadata) -> (RecordBatch, Metadata) {
        if !layout::worth_offloading(&batch) {
            return (batch, metadata);
        }
        match self.write_batch(&batch) {
            Ok(Some((offset, length))) => {
                let pointer = empty_batch(batch.schema_ref());
                let metadata = layout::pointer_metadata(&metadata, offset, length as u64);
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
        let IpcBatch { batch, metadata } = pointer;
        let (offset, length) =
            layout::pointer_region(&metadata, self.segment.size()).map_err(shm_error)?;
        let region = self.segment.mapping.region(offset, length).ok_or_else(|| {
            // `pointer_region` checked the range against this very size.
            RpcError::value_error(format!(
                "shm pointer out of bounds: offset {offset} length {length} segment size {}",
                self.segment.size()
            ))
        })?;
        // A region of up to the size the framing would reserve at once
        // anyway is copied out whole (no zeroing first) and decoded in
        // place; a larger one is read as its framing asks, so a region
        // claiming more than it holds costs only what it holds.
        let decoded = match usize::try_from(length) {
            Ok(small) if small <= EAGER_RESERVE_BYTES => {
                let bytes = self
                    .segment
                    .mapping
                    .copy_out(offset, small)
                    .map_err(out_of_bounds)?;
                layout::decode_region_bytes(bytes.into(), batch.schema_ref())
            }
            _ => layout::decode_region(region, batch.schema_ref()),
        };
        let resolved = decoded.map_err(|err| {
            RpcError::value_error(format!(
                "cannot read the shm batch at offset {offset} length {length}: {}",
                err.message()
            ))
        })?;
        let resolved = IpcBatch {
            batch: resolved,
            metadata: layout::resolved_metadata(metadata, &self.segment.name),
        };
        Ok((resolved, offset))
    }

    /// Stores `batch` in the segment, returning its region's offset and the
    /// bytes written, or `None` when the segment has no room.
    fn write_batch(&self, batch: &RecordBatch) -> Result<Option<(u64, usize)>, RpcError> {
        let bytes =
            layout::encode_region(batch).map_err(|err| RpcError::runtime_error(err.to_string()))?;
        let len = bytes.len();
        Ok(self
            .segment
            .store_bytes(&bytes.into_pieces())?
            .map(|offset| (offset, len)))
    }
}

/// An access outside the segment, which the checks before it should
/// have made impossible.
fn out_of_bounds(err: OutOfBounds) -> RpcError {
    RpcError::value_error(err.to_string())
}

/// A corrupt header, table or pointer, reported as the reference does.
fn shm_error(err: ShmError) -> RpcError {
    RpcError::value_error(err.message())
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
