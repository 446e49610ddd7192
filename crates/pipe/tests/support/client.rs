//! A bare client for the Unix-socket tests: where their servers listen, and
//! calls written and read as raw bytes on the socket.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vgirpc::arrow::array::StringArray;
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::StreamReader;
use vgirpc_test_support::string_call;

/// An upper bound for anything that should happen: only a hang reaches it.
pub(crate) const HANG: Duration = Duration::from_secs(30);

/// A socket path no other test uses.
pub(crate) fn socket_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "vgirpc-pipe-{}-{}-{name}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Connects with reads bounded by [`HANG`].
pub(crate) fn connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream
}

/// Sends a call to `method` with `value`.
pub(crate) fn send(stream: &mut UnixStream, method: &str, value: &str) {
    stream.write_all(&string_call(method, value)).unwrap();
}

/// Reads the answer to a call: its string result, or why there is none.
pub(crate) fn answer(stream: &mut UnixStream) -> Result<String, String> {
    let mut reader = StreamReader::open(&mut *stream).map_err(|e| e.to_string())?;
    let batch = reader
        .next_batch()
        .map_err(|e| e.to_string())?
        .ok_or("no batch")?;
    reader.drain().map_err(|e| e.to_string())?;
    if let BatchKind::Error(info) = classify(&batch.batch, &batch.metadata) {
        return Err(format!("{}: {}", info.error_type, info.message));
    }
    let column = batch
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("not a string result")?;
    Ok(column.value(0).to_owned())
}

/// A call to `method` with `value` and its answer.
pub(crate) fn call(stream: &mut UnixStream, method: &str, value: &str) -> Result<String, String> {
    send(stream, method, value);
    answer(stream)
}
