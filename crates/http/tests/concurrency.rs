//! Concurrency in the HTTP transport: slow methods run in parallel and the
//! server keeps answering while they sleep.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod probe;
    pub(crate) mod probe_call;
    pub(crate) mod probe_start;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::time::{Duration, Instant};

use common::int_param::int;
use common::probe::keyed;
use common::probe_call::call;
use common::probe_start::start;
use common::request::request;
use common::send::send;
use http::{Request, StatusCode};
use http_body_util::Full;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_methods_run_in_parallel_without_stalling_the_reactor() {
    let server = start(keyed()).await;
    let started = Instant::now();
    let naps: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                call(addr, "/nap", request("nap", vec![("millis", int(300))])).await
            })
        })
        .collect();
    // While every worker thread's request sleeps, the server still answers.
    let probe_started = Instant::now();
    let health = send(
        server.addr,
        Request::get("/health")
            .header("host", "test")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(probe_started.elapsed() < Duration::from_millis(250));
    for nap in naps {
        assert_eq!(nap.await.unwrap().ints(), [300]);
    }
    // Sixteen 300 ms calls on two reactor threads: parallel, not serial.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}
