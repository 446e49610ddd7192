//! Unary results through the shared-memory side channel, and a client's
//! segment changing between two requests of one connection.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod bulk;
    pub(crate) mod errors;
    pub(crate) mod segment;
    pub(crate) mod server_writes;
}

use std::io::Cursor;
use std::sync::Arc;

use common::bulk::{BulkImpl, BulkServer, length_params, read_streams, request, serve};
use common::errors::error_of;
use common::segment::{HEADER_SIZE, TestSegment, is_pointer};
use common::server_writes::read_pointer;
use vgirpc::arrow::array::{Array, StringArray};
use vgirpc::wire::ipc::IpcBatch;
use vgirpc::wire::metadata;
use vgirpc::wire::request::Request;
use vgirpc::{Server, TransportKind};
use vgirpc_pipe::ShmSideChannels;

/// An action between two requests, and the request that follows it.
type Step = (Box<dyn FnOnce()>, Vec<u8>);

/// Request bytes handed to the server one request at a time, with an
/// action run before each request after the first (the client changing
/// its segment between two requests of one connection).
struct Staged {
    current: Cursor<Vec<u8>>,
    next: std::collections::VecDeque<Step>,
}

impl std::io::Read for Staged {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some((action, bytes)) = self.next.pop_front() else {
                return Ok(0);
            };
            action();
            self.current = Cursor::new(bytes);
        }
    }
}

/// Serves `first`, then for each step runs its action and serves its bytes,
/// all on one connection; returns every IPC stream the server wrote.
fn serve_staged(first: Vec<u8>, steps: Vec<Step>) -> Vec<Vec<IpcBatch>> {
    let server = Server::new(BulkServer::new(BulkImpl)).unwrap();
    let mut output = Vec::new();
    let reader = Staged {
        current: Cursor::new(first),
        next: steps.into(),
    };
    server
        .serve_with(
            reader,
            &mut output,
            &vgirpc::Peer::anonymous(TransportKind::Pipe),
            &ShmSideChannels,
        )
        .unwrap();
    read_streams(output)
}

#[test]
fn unary_results_travel_through_the_segment() {
    let segment = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    let bytes = request(&length_params("length", 100_000), &segment.request("text"));
    let streams = serve(bytes);
    let result = &streams[0][0];
    assert!(is_pointer(result));
    let batch = read_pointer(&segment, result, false);
    let text = batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "x".repeat(100_000));
}

fn text_of(segment: &TestSegment, result: &IpcBatch) -> String {
    assert!(
        is_pointer(result),
        "the result travels through the segment: {result:?}"
    );
    let batch = read_pointer(segment, result, false);
    let text = batch.column(0).as_any().downcast_ref::<StringArray>();
    text.unwrap().value(0).to_owned()
}

#[test]
fn a_segment_replaced_between_requests_of_a_connection_is_mapped_anew() {
    let first = TestSegment::create(HEADER_SIZE + 1024 * 1024);
    let name = first.name.clone();
    let params = length_params("length", 100_000);
    let before = request(&params, &first.request("text"));
    let replacement: Arc<std::sync::Mutex<Option<TestSegment>>> = Arc::default();
    let slot = Arc::clone(&replacement);
    let replace: Box<dyn FnOnce()> = Box::new(move || {
        let name = first.name.clone();
        drop(first); // removes the file
        *slot.lock().unwrap() = Some(TestSegment::create_named(
            name,
            HEADER_SIZE + 2 * 1024 * 1024,
        ));
    });
    let larger = Request::metadata_for("text")
        .with(metadata::SHM_SEGMENT_NAME, name.as_str())
        .with(
            metadata::SHM_SEGMENT_SIZE,
            (HEADER_SIZE + 2 * 1024 * 1024).to_string(),
        );
    let after = request(&params, &larger);
    let streams = serve_staged(before, vec![(replace, after)]);
    let second = replacement.lock().unwrap().take().unwrap();
    assert_eq!(text_of(&second, &streams[1][0]), "x".repeat(100_000));
    assert_eq!(second.allocations().len(), 1, "written into the new file");
}

#[test]
fn a_kept_segment_whose_header_is_corrupted_is_refused_on_the_next_request() {
    let size = HEADER_SIZE + 1024 * 1024;
    let segment = Arc::new(TestSegment::create(size));
    let params = length_params("length", 100_000);
    let call = || request(&params, &segment.request("text"));
    let corrupted = Arc::clone(&segment);
    let corrupt: Box<dyn FnOnce()> = Box::new(move || {
        corrupted.write_fixed_header(b"NOPE", 1, size - HEADER_SIZE, 0);
    });
    let streams = serve_staged(call(), vec![(corrupt, call())]);
    assert_eq!(text_of(&segment, &streams[0][0]), "x".repeat(100_000));
    assert!(error_of(&streams[1]).message.contains("bad shm magic"));
}
