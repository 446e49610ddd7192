//! The header at the start of a segment: its fixed fields and the
//! allocation table stored after them.

use super::{ENTRY_SIZE, FIXED_SIZE, HEADER_SIZE, MAGIC, MAX_ALLOCS, ShmError, VERSION};

/// The fixed fields at the start of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    magic: [u8; 4],
    version: u32,
    data_size: u64,
    num_allocs: u32,
}

impl FixedHeader {
    /// The header of a fresh segment of `segment_size` bytes: no
    /// allocations yet.
    pub fn new(segment_size: u64) -> Self {
        Self {
            magic: MAGIC,
            version: VERSION,
            data_size: segment_size.saturating_sub(HEADER_SIZE),
            num_allocs: 0,
        }
    }

    /// Decodes the little-endian fixed fields.
    pub fn parse(bytes: &[u8; FIXED_SIZE]) -> Self {
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut data_size = [0u8; 8];
        data_size.copy_from_slice(&bytes[8..16]);
        Self {
            magic: [bytes[0], bytes[1], bytes[2], bytes[3]],
            version: u32_at(4),
            data_size: u64::from_le_bytes(data_size),
            num_allocs: u32_at(16),
        }
    }

    /// Encodes the fixed fields, padding included.
    pub fn encode(&self) -> [u8; FIXED_SIZE] {
        let mut bytes = [0u8; FIXED_SIZE];
        bytes[..4].copy_from_slice(&self.magic);
        bytes[4..8].copy_from_slice(&self.version.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.data_size.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.num_allocs.to_le_bytes());
        bytes
    }

    /// Checks the header describes a segment of `segment_size` bytes, so
    /// both peers agree on where the data region ends.
    pub fn validate(&self, segment_size: u64) -> Result<(), ShmError> {
        if self.magic != MAGIC {
            return Err(ShmError::new(format!(
                "bad shm magic: {:?}",
                String::from_utf8_lossy(&self.magic)
            )));
        }
        if self.version != VERSION {
            return Err(ShmError::new(format!(
                "unsupported shm version: {}",
                self.version
            )));
        }
        let expected = segment_size.saturating_sub(HEADER_SIZE);
        if self.data_size != expected {
            return Err(ShmError::new(format!(
                "shm data_size mismatch: header says {}, segment has {expected}",
                self.data_size
            )));
        }
        self.entry_count().map(|_| ())
    }

    /// Number of allocation entries, refusing counts the header cannot hold.
    pub fn entry_count(&self) -> Result<usize, ShmError> {
        entry_count(self.num_allocs)
    }
}

/// `num_allocs` as a count, refusing values the header cannot hold.
pub fn entry_count(num_allocs: u32) -> Result<usize, ShmError> {
    match usize::try_from(num_allocs) {
        Ok(count) if count <= MAX_ALLOCS => Ok(count),
        _ => Err(ShmError::new(format!(
            "corrupt shm header: num_allocs {num_allocs} exceeds the maximum of {MAX_ALLOCS}"
        ))),
    }
}

/// Byte length of `count` allocation entries.
pub fn entries_len(count: usize) -> usize {
    count * ENTRY_SIZE
}

/// One occupied region of the data area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Absolute offset from the start of the segment.
    pub offset: u64,
    /// Bytes reserved.
    pub length: u64,
}

impl Allocation {
    fn end(&self) -> u64 {
        // Cannot overflow: `Table::parse` and `Table::allocate` only admit
        // allocations that end inside the segment.
        self.offset + self.length
    }
}

/// The sorted list of occupied regions. Free space is never recorded, so
/// removing an entry merges it with any free neighbours by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    entries: Vec<Allocation>,
    segment_size: u64,
}

impl Table {
    /// An empty table for a segment of `segment_size` bytes.
    pub fn empty(segment_size: u64) -> Self {
        Self {
            entries: Vec::new(),
            segment_size,
        }
    }

    /// Decodes `bytes` (the raw entries) and checks they are sorted,
    /// disjoint and inside the data region: the allocator's gap arithmetic
    /// relies on all three.
    pub fn parse(bytes: &[u8], segment_size: u64) -> Result<Self, ShmError> {
        let mut entries = Vec::with_capacity(bytes.len() / ENTRY_SIZE);
        let mut prev_end = HEADER_SIZE;
        for (index, raw) in bytes.chunks_exact(ENTRY_SIZE).enumerate() {
            let mut offset = [0u8; 8];
            let mut length = [0u8; 8];
            offset.copy_from_slice(&raw[..8]);
            length.copy_from_slice(&raw[8..]);
            let offset = u64::from_le_bytes(offset);
            let length = u64::from_le_bytes(length);
            let in_bounds = offset
                .checked_add(length)
                .is_some_and(|end| offset >= prev_end && end <= segment_size);
            if !in_bounds {
                return Err(ShmError::new(format!(
                    "corrupt shm allocation table: entry {index} (offset {offset}, length \
                     {length}) overlaps its predecessor or lies outside the data region of a \
                     {segment_size}-byte segment"
                )));
            }
            prev_end = offset + length;
            entries.push(Allocation { offset, length });
        }
        Ok(Self {
            entries,
            segment_size,
        })
    }

    /// The occupied regions, sorted by offset.
    pub fn entries(&self) -> &[Allocation] {
        &self.entries
    }

    /// Encodes the entries as they are stored after the fixed fields.
    pub fn encode_entries(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(entries_len(self.entries.len()));
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.offset.to_le_bytes());
            bytes.extend_from_slice(&entry.length.to_le_bytes());
        }
        bytes
    }

    /// Reserves `size` bytes in the first gap that holds them with the
    /// start rounded up to `align`, returning the absolute offset, or
    /// `None` when no gap is large enough or the table is full.
    ///
    /// `align` 1 is the reference allocator exactly; batches ask for more so
    /// that a peer reading Arrow buffers in place finds them aligned.
    pub fn allocate(&mut self, size: u64, align: u64) -> Option<u64> {
        if size == 0 || self.entries.len() >= MAX_ALLOCS {
            return None;
        }
        let mut prev_end = HEADER_SIZE;
        let gaps = self
            .entries
            .iter()
            .map(|entry| entry.offset)
            .chain([self.segment_size]);
        for (index, gap_end) in gaps.enumerate() {
            let start = prev_end.checked_next_multiple_of(align.max(1));
            if let Some(start) = start
                && start.checked_add(size).is_some_and(|end| end <= gap_end)
            {
                self.entries.insert(
                    index,
                    Allocation {
                        offset: start,
                        length: size,
                    },
                );
                return Some(start);
            }
            if let Some(entry) = self.entries.get(index) {
                prev_end = entry.end();
            }
        }
        None
    }

    /// Releases the allocation starting at `offset`.
    pub fn free(&mut self, offset: u64) -> Result<(), ShmError> {
        let index = self
            .entries
            .binary_search_by_key(&offset, |entry| entry.offset)
            .map_err(|_| ShmError::new(format!("no shm allocation at offset {offset}")))?;
        self.entries.remove(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT: u64 = HEADER_SIZE + 16_384;

    fn offsets(table: &Table) -> Vec<(u64, u64)> {
        table
            .entries()
            .iter()
            .map(|entry| (entry.offset, entry.length))
            .collect()
    }

    #[test]
    fn header_constants_match_the_wire_layout() {
        assert_eq!(MAX_ALLOCS, 4094);
        assert_eq!(
            FIXED_SIZE + entries_len(MAX_ALLOCS),
            HEADER_SIZE as usize - 8
        );
    }

    #[test]
    fn layout_matches_the_reference_golden_bytes() {
        // The reference pins this exact state: allocations of 100, 156 and
        // 50 bytes, then the middle one freed.
        let mut table = Table::empty(SEGMENT);
        let a = table.allocate(100, 1).unwrap();
        let gap = table.allocate(156, 1).unwrap();
        let b = table.allocate(50, 1).unwrap();
        table.free(gap).unwrap();
        assert_eq!((a, b), (HEADER_SIZE, HEADER_SIZE + 256));
        let mut fixed = FixedHeader::new(SEGMENT);
        fixed.num_allocs = 2;
        let mut header = fixed.encode().to_vec();
        header.extend(table.encode_entries());
        let golden = "5647495301000000004000000000000002000000000000000000010000000000\
                      640000000000000000010100000000003200000000000000";
        let hex: String = header.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, golden);
        let fixed: [u8; FIXED_SIZE] = header[..FIXED_SIZE].try_into().unwrap();
        FixedHeader::parse(&fixed).validate(SEGMENT).unwrap();
        assert_eq!(Table::parse(&header[FIXED_SIZE..], SEGMENT).unwrap(), table);
    }

    #[test]
    fn a_fresh_header_round_trips() {
        let fixed = FixedHeader::new(SEGMENT);
        assert_eq!(FixedHeader::parse(&fixed.encode()), fixed);
        fixed.validate(SEGMENT).unwrap();
        assert_eq!(fixed.entry_count().unwrap(), 0);
    }

    #[test]
    fn first_fit_takes_the_earliest_gap_that_is_large_enough() {
        let mut table = Table::empty(SEGMENT);
        let a = table.allocate(100, 1).unwrap();
        let b = table.allocate(200, 1).unwrap();
        let c = table.allocate(300, 1).unwrap();
        table.free(a).unwrap();
        table.free(c).unwrap();
        // The 100-byte hole at the start is too small for 150 bytes; the
        // space after `b` is the first that fits.
        assert_eq!(table.allocate(150, 1), Some(b + 200));
        // 80 bytes fit the hole at the start.
        assert_eq!(table.allocate(80, 1), Some(HEADER_SIZE));
        assert_eq!(
            offsets(&table),
            vec![(HEADER_SIZE, 80), (b, 200), (b + 200, 150)]
        );
    }

    #[test]
    fn freeing_neighbours_coalesces_their_space() {
        let mut table = Table::empty(SEGMENT);
        let a = table.allocate(4096, 1).unwrap();
        let b = table.allocate(4096, 1).unwrap();
        let c = table.allocate(4096, 1).unwrap();
        let d = table.allocate(4096, 1).unwrap();
        assert_eq!(table.allocate(1, 1), None, "the segment is full");
        table.free(b).unwrap();
        table.free(c).unwrap();
        // Two adjacent 4 KiB holes now form one 8 KiB gap.
        assert_eq!(table.allocate(8192, 1), Some(b));
        assert_eq!(offsets(&table), vec![(a, 4096), (b, 8192), (d, 4096)]);
    }

    #[test]
    fn alignment_rounds_the_start_inside_a_gap() {
        let mut table = Table::empty(SEGMENT);
        table.allocate(10, 1).unwrap();
        assert_eq!(table.allocate(10, 64), Some(HEADER_SIZE + 64));
    }

    #[test]
    fn a_full_segment_or_table_refuses_allocations() {
        let mut table = Table::empty(SEGMENT);
        assert_eq!(table.allocate(SEGMENT - HEADER_SIZE + 1, 1), None);
        assert_eq!(table.allocate(0, 1), None);
        assert_eq!(table.allocate(u64::MAX, 64), None);
        assert_eq!(table.allocate(SEGMENT - HEADER_SIZE, 1), Some(HEADER_SIZE));
        assert_eq!(table.allocate(1, 1), None);

        let mut table = Table::empty(HEADER_SIZE + MAX_ALLOCS as u64 + 10);
        for _ in 0..MAX_ALLOCS {
            table.allocate(1, 1).unwrap();
        }
        assert_eq!(table.allocate(1, 1), None, "no entry left in the header");
    }

    #[test]
    fn freeing_an_unknown_offset_is_an_error() {
        let mut table = Table::empty(SEGMENT);
        table.allocate(10, 1).unwrap();
        let err = table.free(HEADER_SIZE + 1).unwrap_err();
        assert!(
            err.message().contains("no shm allocation at offset"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_headers_and_tables_are_rejected() {
        let fixed = FixedHeader::new(SEGMENT).encode();
        FixedHeader::parse(&fixed).validate(SEGMENT).unwrap();

        let mut bad = fixed;
        bad[16..20].copy_from_slice(&5000u32.to_le_bytes());
        let err = FixedHeader::parse(&bad).validate(SEGMENT).unwrap_err();
        assert!(err.message().contains("num_allocs 5000"), "{err}");

        let err = FixedHeader::parse(&fixed)
            .validate(SEGMENT - 1)
            .unwrap_err();
        assert!(err.message().contains("data_size mismatch"), "{err}");

        let mut bad = fixed;
        bad[0] = b'X';
        assert!(FixedHeader::parse(&bad).validate(SEGMENT).is_err());
        let mut bad = fixed;
        bad[4] = 2;
        assert!(FixedHeader::parse(&bad).validate(SEGMENT).is_err());

        let entry = |offset: u64, length: u64| {
            let mut bytes = offset.to_le_bytes().to_vec();
            bytes.extend(length.to_le_bytes());
            bytes
        };
        for bytes in [
            entry(0, 10),
            entry(SEGMENT - 5, 10),
            entry(HEADER_SIZE, u64::MAX),
            [entry(HEADER_SIZE + 100, 10), entry(HEADER_SIZE, 10)].concat(),
            [entry(HEADER_SIZE, 100), entry(HEADER_SIZE + 50, 10)].concat(),
        ] {
            assert!(Table::parse(&bytes, SEGMENT).is_err());
        }
    }
}
