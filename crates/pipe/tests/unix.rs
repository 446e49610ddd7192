//! The Unix-socket server's limits and drain, driven in-process.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod client;
    pub(crate) mod gate;
    pub(crate) mod probe;
    pub(crate) mod server;
    pub(crate) mod stop;
}

use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use socket2::SockRef;
use support::client::{HANG, answer, call, connect, send};
use support::gate::gated_probe_server;
use support::probe::probe_server;
use support::server::start;
use support::stop::stopped;
use vgirpc_pipe::UnixShutdown;
use vgirpc_test_support::string_call;

/// How long a test watches for an answer that must not come yet. Correct
/// code passes however slow the machine; only wrong code is caught sooner
/// or later, so this bounds the detection, never the verdict.
const WITNESS: Duration = Duration::from_millis(300);

/// Whether an answer starts arriving on `stream` within [`WITNESS`].
fn answers_within_witness(stream: &UnixStream) -> bool {
    stream.set_read_timeout(Some(WITNESS)).unwrap();
    let mut byte = [MaybeUninit::uninit()];
    let seen = SockRef::from(stream).peek(&mut byte).is_ok();
    stream.set_read_timeout(Some(HANG)).unwrap();
    seen
}

/// Whether the server has closed `stream` without sending anything more.
fn closed_by_server(stream: &mut UnixStream) -> bool {
    let mut rest = Vec::new();
    std::io::Read::read_to_end(stream, &mut rest).is_ok_and(|read| read == 0)
}

#[test]
fn a_request_beyond_the_active_limit_waits_for_a_serving_thread() {
    let (server, gate) = gated_probe_server();
    let (running, _serving) = start(server, |config| config.max_active_requests = 1);
    let mut holder = connect(&running.path);
    send(&mut holder, "held", "first");
    assert_eq!(gate.entered(), "first");

    let mut waiter = connect(&running.path);
    send(&mut waiter, "echo", "second");
    assert!(
        !answers_within_witness(&waiter),
        "answered while the only serving thread was busy"
    );

    gate.open();
    assert_eq!(answer(&mut holder).unwrap(), "first");
    assert_eq!(answer(&mut waiter).unwrap(), "second");
}

#[test]
fn a_connection_beyond_the_limit_waits_while_existing_ones_are_served() {
    let server = probe_server();
    let (running, _serving) = start(server, |config| config.max_connections = Some(2));
    let mut first = connect(&running.path);
    let mut second = connect(&running.path);
    assert_eq!(call(&mut first, "echo", "a").unwrap(), "a");
    assert_eq!(call(&mut second, "echo", "b").unwrap(), "b");

    let mut third = connect(&running.path);
    send(&mut third, "echo", "c");
    assert!(
        !answers_within_witness(&third),
        "a third connection was served beside two"
    );
    assert_eq!(call(&mut first, "echo", "a again").unwrap(), "a again");
    assert_eq!(call(&mut second, "echo", "b again").unwrap(), "b again");

    drop(first);
    assert_eq!(answer(&mut third).unwrap(), "c");
}

#[test]
fn stopping_answers_the_call_in_flight_and_closes_idle_connections() {
    let (server, gate) = gated_probe_server();
    let (mut running, serving) = start(server, |_| {});
    let mut idle = connect(&running.path);
    assert_eq!(call(&mut idle, "echo", "idle").unwrap(), "idle");
    let mut busy = connect(&running.path);
    send(&mut busy, "held", "in flight");
    assert_eq!(gate.entered(), "in flight");

    running.stop();
    assert!(closed_by_server(&mut idle), "the idle connection is closed");
    assert!(
        UnixStream::connect(&running.path).is_err(),
        "no new connection is accepted while draining"
    );
    gate.open();
    assert_eq!(answer(&mut busy).unwrap(), "in flight");
    assert!(closed_by_server(&mut busy), "closed after its answer");
    assert_eq!(stopped(serving), UnixShutdown::Requested);
    assert!(!running.path.exists(), "socket file removed");
}

#[test]
fn a_request_queued_when_the_drain_begins_is_answered() {
    let (server, gate) = gated_probe_server();
    let (mut running, serving) = start(server, |config| config.max_connections = Some(1));
    let mut busy = connect(&running.path);
    send(&mut busy, "held", "served");
    assert_eq!(gate.entered(), "served");
    // Beyond the limit, this connection waits in the listen backlog with
    // its request already sent.
    let mut queued = connect(&running.path);
    send(&mut queued, "echo", "queued");

    running.stop();
    gate.open();
    assert_eq!(answer(&mut busy).unwrap(), "served");
    assert_eq!(answer(&mut queued).unwrap(), "queued");
    assert_eq!(stopped(serving), UnixShutdown::Requested);
}

#[test]
fn the_grace_period_ends_a_call_that_outlives_it() {
    let (server, gate) = gated_probe_server();
    let (mut running, serving) = start(server, |config| {
        config.drain_grace = Duration::from_millis(100);
    });
    let mut busy = connect(&running.path);
    send(&mut busy, "held", "too slow");
    assert_eq!(gate.entered(), "too slow");

    running.stop();
    assert_eq!(stopped(serving), UnixShutdown::Requested);
    assert!(
        answer(&mut busy).is_err(),
        "the connection was closed without an answer"
    );
    assert!(!running.path.exists(), "socket file removed");
    gate.open();
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let server = probe_server();
    let (running, _serving) = start(server, |_| {});
    let mut client = connect(&running.path);
    let together: Vec<u8> = ["one", "two", "three"]
        .iter()
        .flat_map(|value| string_call("echo", value))
        .collect();
    std::io::Write::write_all(&mut client, &together).unwrap();
    for value in ["one", "two", "three"] {
        assert_eq!(answer(&mut client).unwrap(), value);
    }
}

#[test]
fn pauses_between_and_within_requests_lose_nothing() {
    // Longer than a serving thread waits for a connection's next request.
    let pause = Duration::from_millis(50);
    let server = probe_server();
    let (running, _serving) = start(server, |_| {});
    let mut client = connect(&running.path);
    for round in 0..3 {
        // Calls back to back keep the connection on its serving thread.
        for value in ["a", "b", "c"] {
            assert_eq!(call(&mut client, "echo", value).unwrap(), value);
        }
        let bytes = string_call("echo", &format!("split {round}"));
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        std::io::Write::write_all(&mut client, head).unwrap();
        std::thread::sleep(pause);
        std::io::Write::write_all(&mut client, tail).unwrap();
        assert_eq!(answer(&mut client).unwrap(), format!("split {round}"));
        std::thread::sleep(pause);
    }
}
