//! `__describe__` parsing: a describe response stream as a client reads it,
//! each batch handed to `parse_describe_batch`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vgirpc_fuzz::budget::check_input;
use vgirpc_wire::describe::parse_describe_batch;
use vgirpc_wire::ipc::{ReadLimits, StreamReader};

fn parse_all(mut bytes: &[u8]) {
    let Ok(Some(mut stream)) = StreamReader::try_open(&mut bytes, ReadLimits::default()) else {
        return;
    };
    while let Ok(Some(batch)) = stream.next_batch() {
        if let Ok(description) = parse_describe_batch(&batch.batch, &batch.metadata) {
            for method in &description.methods {
                assert!(
                    description.method(&method.name).is_some(),
                    "a parsed method {:?} cannot be looked up",
                    method.name
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_input(data.len(), || parse_all(data));
});
