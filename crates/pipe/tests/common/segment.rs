//! A segment file formatted the way a client formats one, and the pieces of
//! the layout the tests build and check by hand rather than through the
//! crate under test.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use vgirpc::arrow::schema::SchemaRef;
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::{EOS, IpcBatch, StreamWriter};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request;

pub(crate) const HEADER_SIZE: u64 = 65_536;

/// A segment file in /dev/shm, formatted as a client formats a fresh one:
/// the header with zero allocations, the data region after it.
pub(crate) struct TestSegment {
    pub(crate) name: String,
    path: PathBuf,
    pub(crate) file: File,
    size: u64,
}

impl TestSegment {
    pub(crate) fn create(size: u64) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vgirpc-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self::create_named(name, size)
    }

    /// A fresh segment under `name`, which must not exist.
    pub(crate) fn create_named(name: String, size: u64) -> Self {
        let path = PathBuf::from("/dev/shm").join(&name);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(size).unwrap();
        let segment = Self {
            name,
            path,
            file,
            size,
        };
        segment.write_fixed_header(b"VGIS", 1, size - HEADER_SIZE, 0);
        segment
    }

    pub(crate) fn write_fixed_header(
        &self,
        magic: &[u8; 4],
        version: u32,
        data_size: u64,
        count: u32,
    ) {
        let mut header = magic.to_vec();
        header.extend(version.to_le_bytes());
        header.extend(data_size.to_le_bytes());
        header.extend(count.to_le_bytes());
        header.extend(0u32.to_le_bytes());
        self.file.write_all_at(&header, 0).unwrap();
    }

    pub(crate) fn request(&self, method: &str) -> Metadata {
        Request::metadata_for(method)
            .with(metadata::SHM_SEGMENT_NAME, self.name.as_str())
            .with(metadata::SHM_SEGMENT_SIZE, self.size.to_string())
    }
}

impl Drop for TestSegment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The schema message that opens an IPC stream on `schema`.
pub(crate) fn schema_message(schema: &SchemaRef) -> Vec<u8> {
    let mut bytes = StreamWriter::try_new(Vec::new(), schema)
        .unwrap()
        .finish()
        .unwrap();
    bytes.truncate(bytes.len() - EOS.len());
    bytes
}

pub(crate) fn is_pointer(batch: &IpcBatch) -> bool {
    classify(&batch.batch, &batch.metadata) == BatchKind::ShmPointer
}
