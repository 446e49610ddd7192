//! The pyarrow fixtures under `tests/fixtures/`, written by
//! `tests/fixtures/generate.py` (see its header for how to regenerate them).

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The schema message at the start of an IPC stream, framing included.
pub(crate) fn schema_message(stream: &[u8]) -> &[u8] {
    assert_eq!(stream[..4], [0xff; 4]);
    let len = i32::from_le_bytes(stream[4..8].try_into().unwrap());
    &stream[..8 + usize::try_from(len).unwrap()]
}
