//! Two thousand idle connections cost no thread each; a valid client is
//! served beside them. Alone in its process, so that the thread count is
//! the server's.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod client;
    pub(crate) mod probe;
    pub(crate) mod proc_status;
}

use std::sync::mpsc::channel;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use support::client::{HANG, call, connect, socket_path};
use support::probe::probe_server;
use support::proc_status::{rss_kib, threads};
use vgirpc::transport::NoSideChannels;
use vgirpc_pipe::{UnixConfig, serve_unix};

const IDLE: usize = 2_000;
const ACTIVE: usize = 8;

/// Both ends of every connection live in this process.
fn make_room_for_descriptors(needed: u64) {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < needed) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum.map(|max| max.min(needed)).or(Some(needed)),
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
}

#[test]
fn idle_connections_hold_no_thread_and_leave_room_for_a_valid_client() {
    make_room_for_descriptors(2 * IDLE as u64 + 256);
    let server = probe_server();
    let path = socket_path("idle");
    let mut config = UnixConfig::new(&path);
    config.threaded = true;
    config.max_active_requests = ACTIVE;
    let (ready, listening) = channel();
    std::thread::spawn(move || {
        serve_unix(&server, &config, NoSideChannels, |_| {
            ready.send(()).unwrap()
        })
    });
    listening.recv_timeout(HANG).expect("the server listens");
    let rss_before = rss_kib();

    // One call each proves the connection was accepted and served; then it
    // stays open without another word.
    let mut idle: Vec<_> = (0..IDLE)
        .map(|i| {
            let mut stream = connect(&path);
            let value = format!("idle {i}");
            assert_eq!(call(&mut stream, "echo", &value).unwrap(), value);
            stream
        })
        .collect();

    let mut valid = connect(&path);
    assert_eq!(call(&mut valid, "echo", "valid").unwrap(), "valid");
    // This thread, the harness's, the accept loop's and the serving pool's.
    let threads = threads();
    eprintln!(
        "{IDLE} idle connections: {threads} threads, RSS {} KiB -> {} KiB",
        rss_before,
        rss_kib()
    );
    assert!(
        threads <= ACTIVE + 8,
        "{threads} threads for {IDLE} idle connections"
    );

    // Idle connections still have their server.
    for stream in idle.iter_mut().step_by(97) {
        assert_eq!(call(stream, "echo", "again").unwrap(), "again");
    }
}
