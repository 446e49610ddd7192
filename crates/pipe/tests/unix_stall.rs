//! A peer that stops in the middle of a message is cut off once the
//! body-read timeout passes, and its serving thread goes to other clients;
//! a peer that pauses between messages is waited for.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod client;
    pub(crate) mod probe;
    pub(crate) mod server;
}

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use support::client::{HANG, answer, call, connect};
use support::probe::probe_server;
use support::server::start;
use vgirpc_test_support::string_call;

const TIMEOUT: Duration = Duration::from_millis(400);

/// Sends all but the last bytes of a call whose body is a few hundred
/// kilobytes, so the server is left in the middle of that body.
fn stall_mid_body(stream: &mut UnixStream) -> Instant {
    let bytes = string_call("echo", &"x".repeat(300_000));
    stream.write_all(&bytes[..bytes.len() - 1_000]).unwrap();
    Instant::now()
}

/// Reads the server's last answer to a stalled peer, then its close.
fn assert_cut_off(stream: &mut UnixStream, stalled_at: Instant) {
    let err = answer(stream).unwrap_err();
    assert!(err.contains("no bytes arrived"), "{err}");
    assert_eq!(stream.read(&mut [0; 16]).unwrap(), 0, "closed");
    let waited = stalled_at.elapsed();
    assert!(
        waited >= TIMEOUT && waited < HANG,
        "cut off after {waited:?}"
    );
}

#[test]
fn a_peer_stalled_mid_message_is_cut_off_while_others_are_served() {
    let server = probe_server();
    let (running, _serving) = start(server, |config| {
        config.max_active_requests = 1;
        config.body_read_timeout = Some(TIMEOUT);
    });
    let mut stalled = connect(&running.path);
    let stalled_at = stall_mid_body(&mut stalled);
    // The only serving thread is held by the stalled request until the
    // timeout gives it back.
    let mut other = connect(&running.path);
    assert_eq!(call(&mut other, "echo", "next").unwrap(), "next");
    assert_cut_off(&mut stalled, stalled_at);
    assert_eq!(call(&mut other, "echo", "again").unwrap(), "again");
}

#[test]
fn a_peer_stalling_right_after_a_call_is_cut_off_too() {
    let server = probe_server();
    let (running, _serving) = start(server, |config| config.body_read_timeout = Some(TIMEOUT));
    let mut client = connect(&running.path);
    // Calls in quick succession keep a serving thread waiting on the
    // connection for the next one, at its shortest timeout.
    for round in 0..3 {
        assert_eq!(
            call(&mut client, "echo", "quick").unwrap(),
            "quick",
            "{round}"
        );
    }
    let stalled_at = stall_mid_body(&mut client);
    assert_cut_off(&mut client, stalled_at);
}

#[test]
fn a_peer_pausing_between_messages_is_waited_for() {
    let server = probe_server();
    let (running, _serving) = start(server, |config| config.body_read_timeout = Some(TIMEOUT));
    let mut client = connect(&running.path);
    let bytes = string_call("echo", "after a pause");
    // The schema message has no body: it ends with its flatbuffer.
    let schema_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    client.write_all(&bytes[..8 + schema_len]).unwrap();
    std::thread::sleep(TIMEOUT * 3);
    client.write_all(&bytes[8 + schema_len..]).unwrap();
    assert_eq!(answer(&mut client).unwrap(), "after a pause");
}

#[test]
fn without_a_body_read_timeout_a_stalled_peer_is_waited_for() {
    let server = probe_server();
    let (running, _serving) = start(server, |config| config.body_read_timeout = None);
    let mut stalled = connect(&running.path);
    stall_mid_body(&mut stalled);
    stalled.set_read_timeout(Some(TIMEOUT * 3)).unwrap();
    let err = stalled.read(&mut [0; 16]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
}
