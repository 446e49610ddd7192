//! Who a method sees as its caller on each transport of this crate.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod client;
    pub(crate) mod probe;
    pub(crate) mod server;
    pub(crate) mod stop;
}

use std::io::Cursor;

use support::client::{call, connect};
use support::probe::probe_server;
use support::server::start;
use support::stop::stopped;
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::StreamReader;
use vgirpc_pipe::serve_pipe;
use vgirpc_test_support::string_call;

#[test]
fn a_unix_socket_caller_is_the_peer_process_authenticated_by_the_kernel() {
    let server = probe_server();
    let (mut running, serving) = start(server, |_| {});
    let mut stream = connect(&running.path);
    let uid = rustix::process::getuid().as_raw();
    assert_eq!(
        call(&mut stream, "whoami", "?"),
        Ok(format!("unix:{uid}:{}", std::process::id()))
    );
    drop(stream);
    running.stop();
    stopped(serving);
}

#[test]
fn a_pipe_caller_is_anonymous() {
    let server = probe_server();
    let mut output = Vec::new();
    serve_pipe(
        &server,
        Cursor::new(string_call("whoami", "?")),
        &mut output,
    )
    .unwrap();
    let mut reader = StreamReader::open(output.as_slice()).unwrap();
    let batch = reader.next_batch().unwrap().unwrap();
    assert!(matches!(
        classify(&batch.batch, &batch.metadata),
        BatchKind::Data
    ));
    let column = batch.batch.column(0);
    let text = column
        .as_any()
        .downcast_ref::<vgirpc::arrow::array::StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "::");
}
