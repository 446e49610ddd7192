//! The IPC stream reader over a byte slice: every stream back to back and
//! every batch of each, as a transport reads a connection.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vgirpc_fuzz::budget::check_input;
use vgirpc_wire::ipc::{ReadLimits, StreamReader};
use vgirpc_wire::log::LogRecord;

fn read_all(mut bytes: &[u8]) {
    loop {
        let mut stream = match StreamReader::try_open(&mut bytes, ReadLimits::default()) {
            Ok(Some(stream)) => stream,
            Ok(None) | Err(_) => return,
        };
        loop {
            match stream.next_batch() {
                Ok(Some(batch)) => {
                    // What a client does with each batch's metadata.
                    let _ = LogRecord::from_metadata(&batch.metadata);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_input(data.len(), || read_all(data));
});
