//! Pointer batches: the zero-row batches that name a region of the segment
//! in their metadata instead of carrying the data.

use crate::ipc::IpcBatch;
use crate::metadata::{self, Metadata};

use super::{HEADER_SIZE, ShmError};

/// Whether `batch` points into the segment: zero rows and an offset key,
/// unless log keys make it a log batch.
pub fn is_pointer(batch: &IpcBatch) -> bool {
    batch.batch.num_rows() == 0
        && batch.metadata.contains(metadata::SHM_OFFSET)
        && !batch.metadata.contains(metadata::LOG_LEVEL)
}

/// The region a pointer batch names, as `(offset, length)`, checked to lie
/// in the data area of a segment of `segment_size` bytes.
pub fn pointer_region(metadata: &Metadata, segment_size: u64) -> Result<(u64, u64), ShmError> {
    let offset = pointer_field(metadata, metadata::SHM_OFFSET)?;
    let length = pointer_field(metadata, metadata::SHM_LENGTH)?;
    let inside = offset >= HEADER_SIZE
        && offset
            .checked_add(length)
            .is_some_and(|end| end <= segment_size);
    if !inside {
        return Err(ShmError::new(format!(
            "shm pointer out of bounds: offset {offset} length {length} segment size \
             {segment_size}"
        )));
    }
    Ok((offset, length))
}

/// A decimal pointer field of a pointer batch.
fn pointer_field(metadata: &Metadata, key: &str) -> Result<u64, ShmError> {
    let value = metadata
        .get(key)
        .ok_or_else(|| ShmError::new(format!("shm pointer batch lacks {key}")))?;
    value
        .trim()
        .parse()
        .map_err(|_| ShmError::new(format!("shm pointer has an invalid {key}: {value:?}")))
}

/// The metadata of a pointer to `offset..offset + length`, on top of the
/// batch's own `metadata`.
pub fn pointer_metadata(metadata: &Metadata, offset: u64, length: u64) -> Metadata {
    metadata
        .clone()
        .with(metadata::SHM_OFFSET, offset.to_string())
        .with(metadata::SHM_LENGTH, length.to_string())
}

/// The metadata of a batch read from a segment: the pointer's, without the
/// region keys, naming the segment it came from.
pub fn resolved_metadata(mut pointer: Metadata, segment_name: &str) -> Metadata {
    pointer.remove(metadata::SHM_OFFSET);
    pointer.remove(metadata::SHM_LENGTH);
    pointer.insert(metadata::SHM_SOURCE, segment_name);
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT: u64 = HEADER_SIZE + 16_384;

    #[test]
    fn pointers_name_regions_inside_the_data_area() {
        let md = pointer_metadata(&Metadata::new().with("k", "v"), HEADER_SIZE + 64, 100);
        assert_eq!(
            pointer_region(&md, SEGMENT).unwrap(),
            (HEADER_SIZE + 64, 100)
        );
        let resolved = resolved_metadata(md, "psm_1");
        assert_eq!(resolved.get("k"), Some("v"));
        assert_eq!(resolved.get(metadata::SHM_SOURCE), Some("psm_1"));
        assert!(!resolved.contains(metadata::SHM_OFFSET));

        for (offset, length) in [(8, 1), (SEGMENT, 1), (HEADER_SIZE, u64::MAX)] {
            let err = pointer_region(&pointer_metadata(&Metadata::new(), offset, length), SEGMENT)
                .unwrap_err();
            assert_eq!(
                err.message(),
                format!(
                    "shm pointer out of bounds: offset {offset} length {length} segment size \
                     {SEGMENT}"
                )
            );
        }
        let garbled = Metadata::new()
            .with(metadata::SHM_OFFSET, "x")
            .with(metadata::SHM_LENGTH, "1");
        assert!(pointer_region(&garbled, SEGMENT).is_err());
        let half = Metadata::new().with(metadata::SHM_OFFSET, "70000");
        assert!(pointer_region(&half, SEGMENT).is_err());
    }
}
