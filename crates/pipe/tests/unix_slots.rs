//! Every way a connection ends gives its place back to the next client.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod client;
    pub(crate) mod gate;
    pub(crate) mod probe;
}

use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;

use support::client::{HANG, call, connect, send, socket_path};
use support::gate::gated_probe_server;
use support::probe::probe_server;
use vgirpc::Server;
use vgirpc::transport::NoSideChannels;
use vgirpc_pipe::{UnixConfig, serve_unix};
use vgirpc_test_support::string_call;

/// Serves `server` with room for one connection, for the rest of the test
/// process.
fn serve_one_connection_at_a_time(server: Server) -> PathBuf {
    let path = socket_path("slots");
    let mut config = UnixConfig::new(&path);
    config.threaded = true;
    config.max_connections = Some(1);
    let (ready, listening) = channel();
    std::thread::spawn(move || {
        serve_unix(&server, &config, NoSideChannels, |_| {
            ready.send(()).unwrap()
        })
    });
    listening.recv_timeout(HANG).expect("the server listens");
    path
}

fn assert_next_client_served(path: &Path) {
    let mut next = connect(path);
    assert_eq!(call(&mut next, "echo", "next").unwrap(), "next");
}

#[test]
fn a_panicking_call_gives_its_slot_back() {
    let server = probe_server();
    let path = serve_one_connection_at_a_time(server);
    let mut client = connect(&path);
    let err = call(&mut client, "panics", "on purpose").unwrap_err();
    assert!(
        err.starts_with("PanicError:") && err.contains("on purpose"),
        "{err}"
    );
    assert_eq!(
        call(&mut client, "echo", "same connection").as_deref(),
        Ok("same connection")
    );
    drop(client);
    assert_next_client_served(&path);
}

#[test]
fn a_client_leaving_mid_request_gives_its_slot_back() {
    let server = probe_server();
    let path = serve_one_connection_at_a_time(server);
    {
        let mut partial = connect(&path);
        let bytes = string_call("echo", "cut short");
        std::io::Write::write_all(&mut partial, &bytes[..bytes.len() / 2]).unwrap();
    }
    assert_next_client_served(&path);
}

#[test]
fn a_client_leaving_during_its_call_gives_its_slot_back() {
    let (server, gate) = gated_probe_server();
    let path = serve_one_connection_at_a_time(server);
    {
        let mut leaving = connect(&path);
        send(&mut leaving, "held", "abandoned");
        assert_eq!(gate.entered(), "abandoned");
    }
    gate.open();
    assert_next_client_served(&path);
}
