//! Who a method sees as its caller on each transport of this crate.

mod support;

use std::io::Cursor;
use std::sync::mpsc::channel;

use support::{HANG, call, connect, probe_server, request, socket_path};
use vgirpc::NoSideChannels;
use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::StreamReader;
use vgirpc_pipe::{UnixConfig, serve_pipe, serve_unix_until};

#[test]
fn a_unix_socket_caller_is_the_peer_process_authenticated_by_the_kernel() {
    let (server, _gate) = probe_server();
    let path = socket_path("whoami");
    let config = UnixConfig::new(&path);
    let (ready, listening) = channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        serve_unix_until(
            &server,
            &config,
            NoSideChannels,
            |_| ready.send(()).unwrap(),
            async {
                let _ = stopped.await;
            },
        )
    });
    listening.recv_timeout(HANG).expect("the server listens");
    let mut stream = connect(&path);
    let uid = rustix::process::getuid().as_raw();
    assert_eq!(
        call(&mut stream, "whoami", "?"),
        Ok(format!("unix:{uid}:{}", std::process::id()))
    );
    drop(stream);
    stop.send(()).unwrap();
    serving.join().unwrap().unwrap();
}

#[test]
fn a_pipe_caller_is_anonymous() {
    let (server, _gate) = probe_server();
    let mut output = Vec::new();
    serve_pipe(&server, Cursor::new(request("whoami", "?")), &mut output).unwrap();
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
