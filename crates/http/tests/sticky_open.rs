//! Sticky sessions over real HTTP, from opening to closing: the headers
//! of each step, the client's opt-in, a session replaced in one call, and
//! a session outliving its own TTL.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod errors;
    pub(crate) mod exception;
    pub(crate) mod header;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}
mod sticky_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::errors::assert_error_contains;
use common::int_param::int;
use sticky_support::server::{start, sticky};
use sticky_support::session::{Checked, Session, add, assert_lost, call, open};

#[tokio::test(flavor = "multi_thread")]
async fn open_resume_and_close_with_their_headers() {
    let server = start(sticky()).await;
    let (opened, token) = open(server.addr, 7).await;
    assert_eq!(opened.int(), 7);
    assert_eq!(opened.header("vgi-echo-x-route"), Some("machine-7"));
    assert_eq!(opened.header("vgi-session-close"), None);

    let session = Session::with(&token);
    for expected in [17, 27] {
        let reply = add(server.addr, &session, 10).await;
        assert_eq!(reply.int(), expected);
        // Only the opening response names the token and the echo headers.
        assert_eq!(reply.header("vgi-session"), None);
        assert_eq!(reply.header("vgi-echo-x-route"), None);
    }

    let closed = call(server.addr, &session, "close", vec![]).await;
    assert_eq!(closed.int(), 27);
    assert_eq!(closed.header("vgi-session-close"), Some("true"));
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);

    // The registry really let go of it.
    assert_lost(&add(server.addr, &session, 1).await);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_reopened_in_one_call_hands_out_only_the_new_token() {
    let server = start(sticky()).await;
    let (_, old) = open(server.addr, 4).await;
    let reply = call(server.addr, &Session::with(&old), "reopen", vec![]).await;
    assert_eq!(reply.int(), 4);
    assert_eq!(reply.header("vgi-session-close"), None);
    let new = reply.header("vgi-session").unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_lost(&add(server.addr, &Session::with(&old), 1).await);
    assert_eq!(add(server.addr, &Session::with(&new), 1).await.int(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_needs_the_clients_opt_in_and_no_session_yet() {
    let server = start(sticky()).await;
    let reply = call(
        server.addr,
        &Session::default(),
        "open",
        vec![("initial", int(1))],
    )
    .await;
    let error = reply.error().unwrap();
    assert_eq!(error.error_type, "RuntimeError");
    assert_error_contains(&error, "VGI-Session-Accept");
    assert_eq!(reply.header("vgi-session"), None);

    let (_, token) = open(server.addr, 1).await;
    let again = call(
        server.addr,
        &Session::with(&token),
        "open",
        vec![("initial", int(2))],
    )
    .await;
    let error = again.error().unwrap();
    assert_eq!(
        error.message,
        "a sticky session is already active for this request"
    );
    assert_eq!(server.closes.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_after_their_own_ttl() {
    let server = start(sticky()).await;
    let reply = call(
        server.addr,
        &Session::accepting(),
        "open_briefly",
        vec![("initial", int(1)), ("millis", int(300))],
    )
    .await;
    let token = reply.header("vgi-session").unwrap().to_owned();
    // Well past the TTL: lost whether the reaper or the lookup evicts it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_lost(&add(server.addr, &Session::with(&token), 1).await);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
}
