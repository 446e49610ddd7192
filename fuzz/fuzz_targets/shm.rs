//! The shared-memory segment header, allocation table and regions
//! (`vgirpc_wire::shm`), as a worker attached to a client's segment reads
//! them.
//!
//! An input is a compact segment image: the 24 fixed header bytes, the
//! allocation entries the header counts, then the data region; the
//! segment's size is the header area plus that data. Each allocation is
//! then read as the region of a pointer batch, against a plain and a
//! dictionary-encoded schema. A table that parses must also keep its
//! invariants through an allocation and a free.

#![no_main]

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use libfuzzer_sys::fuzz_target;
use vgirpc_fuzz::budget::check_input;
use vgirpc_wire::metadata::Metadata;
use vgirpc_wire::shm::{
    FIXED_SIZE, FixedHeader, HEADER_SIZE, Table, decode_region, entries_len, pointer_metadata,
    pointer_region,
};

/// Arrow's preferred alignment, which both peers allocate regions with.
const REGION_ALIGN: u64 = 64;

fn schemas() -> [SchemaRef; 2] {
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    [
        Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Int64,
            true,
        )])),
        Arc::new(Schema::new(vec![Field::new("value", dictionary, true)])),
    ]
}

fn attach(image: &[u8]) {
    let Some((fixed, rest)) = image.split_first_chunk::<FIXED_SIZE>() else {
        return;
    };
    let header = FixedHeader::parse(fixed);
    let Ok(count) = header.entry_count() else {
        return;
    };
    let Some((entries, data)) = rest.split_at_checked(entries_len(count)) else {
        return;
    };
    let segment_size = HEADER_SIZE + data.len() as u64;
    if header.validate(segment_size).is_err() {
        return;
    }
    let Ok(table) = Table::parse(entries, segment_size) else {
        return;
    };
    for allocation in table.entries() {
        let pointer = pointer_metadata(&Metadata::new(), allocation.offset, allocation.length);
        let (offset, length) = pointer_region(&pointer, segment_size)
            .expect("an entry of a valid table is a valid pointer");
        let start = usize::try_from(offset - HEADER_SIZE).expect("inside the image");
        let end = start + usize::try_from(length).expect("inside the image");
        for schema in &schemas() {
            let _ = decode_region(&data[start..end], schema);
        }
    }
    check_allocator(&table, segment_size, data.len() as u64 / 4 + 1);
}

/// Allocating and freeing again must keep the table parseable and leave
/// it as it was.
fn check_allocator(table: &Table, segment_size: u64, size: u64) {
    let mut grown = table.clone();
    let Some(offset) = grown.allocate(size, REGION_ALIGN) else {
        return;
    };
    assert!(offset >= HEADER_SIZE && offset + size <= segment_size);
    assert_eq!(offset % REGION_ALIGN, 0);
    let reparsed = Table::parse(&grown.encode_entries(), segment_size)
        .expect("a table after an allocation parses");
    assert_eq!(reparsed, grown);
    grown.free(offset).expect("the new allocation can be freed");
    assert_eq!(&grown, table);
}

fuzz_target!(|data: &[u8]| {
    check_input(data.len(), || attach(data));
});
