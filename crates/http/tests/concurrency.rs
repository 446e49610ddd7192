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

/// Long enough that a loaded machine answers the probe well before any nap
/// ends, and that sixteen naps in a row would take many times as long as
/// sixteen side by side.
const NAP_MILLIS: i64 = 2_000;
const NAPS: u32 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_methods_run_in_parallel_without_stalling_the_reactor() {
    let server = start(keyed()).await;
    let started = Instant::now();
    let naps: Vec<_> = (0..NAPS)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                call(
                    addr,
                    "/nap",
                    request("nap", vec![("millis", int(NAP_MILLIS))]),
                )
                .await
            })
        })
        .collect();
    // While every worker thread's request sleeps, the server still answers.
    let health = send(
        server.addr,
        Request::get("/health")
            .header("host", "test")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        naps.iter().all(|nap| !nap.is_finished()),
        "the probe waited for a nap to end"
    );
    for nap in naps {
        assert_eq!(nap.await.unwrap().ints(), [NAP_MILLIS]);
    }
    // Naps one after another would take sixteen of them; side by side, one.
    let serial = Duration::from_millis(NAP_MILLIS as u64) * NAPS;
    assert!(started.elapsed() < serial / 4, "{:?}", started.elapsed());
}
