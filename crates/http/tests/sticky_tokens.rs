//! Which requests reach a sticky session: tokens that name no usable
//! session, a session another principal opened, and DELETE /__session__
//! with any of them.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
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

use common::int_param::int;
use common::send::send;
use http::{Method, StatusCode};
use sticky_support::server::{key, start, sticky};
use sticky_support::session::{Checked, Session, add, assert_lost, call, open};
use vgirpc_http::{AuthContext, HttpConfig, StickyConfig, TokenKey, bearer_static};
use vgirpc_token::{Identity, SessionToken, unix_now};

#[tokio::test(flavor = "multi_thread")]
async fn unusable_tokens_are_session_lost() {
    let server = start(sticky()).await;
    let (_, token) = open(server.addr, 1).await;

    assert_lost(&add(server.addr, &Session::with("not-a-real-token"), 1).await);
    assert_lost(&add(server.addr, &Session::with("%%%"), 1).await);
    // Sealed with another key.
    let (_, foreign) = {
        let other = start(
            HttpConfig::new()
                .with_token_key(TokenKey::new(b"another key"))
                .with_sticky(StickyConfig::new()),
        )
        .await;
        open(other.addr, 1).await
    };
    assert_lost(&add(server.addr, &Session::with(&foreign), 1).await);
    // Sealed with the right key, by another worker.
    let opened = SessionToken::open(&token, &key(), &Identity::Anonymous, unix_now()).unwrap();
    let elsewhere = SessionToken {
        server_id: "another-worker".into(),
        ..opened.clone()
    }
    .seal(&key(), &Identity::Anonymous)
    .unwrap();
    assert_lost(&add(server.addr, &Session::with(&elsewhere), 1).await);
    // Naming a session this worker never had.
    let unknown = SessionToken {
        session_id: [0; 12],
        ..opened
    }
    .seal(&key(), &Identity::Anonymous)
    .unwrap();
    assert_lost(&add(server.addr, &Session::with(&unknown), 1).await);

    // None of that disturbed the real session.
    assert_eq!(add(server.addr, &Session::with(&token), 1).await.int(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_bound_to_their_principal() {
    let auth = bearer_static([
        (
            "alice-token".to_owned(),
            AuthContext::authenticated("bearer", "alice"),
        ),
        (
            "bob-token".to_owned(),
            AuthContext::authenticated("bearer", "bob"),
        ),
    ]);
    let server = start(sticky().with_authenticate(auth)).await;
    let alice = Session {
        accept: true,
        token: None,
        bearer: Some("alice-token"),
    };
    let reply = call(server.addr, &alice, "open", vec![("initial", int(5))]).await;
    let token = reply.header("vgi-session").unwrap().to_owned();
    let alice = Session {
        token: Some(token.clone()),
        ..alice
    };
    let bob = Session {
        token: Some(token),
        bearer: Some("bob-token"),
        ..alice.clone()
    };
    assert_lost(&add(server.addr, &bob, 1).await);
    // Bob cannot end it either; DELETE stays 200 so he learns nothing.
    let reply = send(
        server.addr,
        bob.request(Method::DELETE, "/__session__", vec![]),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(add(server.addr, &alice, 1).await.int(), 6);
    let reply = send(
        server.addr,
        alice.request(Method::DELETE, "/__session__", vec![]),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_idempotent_and_closes_once() {
    let server = start(sticky()).await;
    let delete = |session: Session| {
        send(
            server.addr,
            session.request(Method::DELETE, "/__session__", vec![]),
        )
    };
    assert_eq!(delete(Session::default()).await.status(), StatusCode::OK);
    assert_eq!(
        delete(Session::with("garbage")).await.status(),
        StatusCode::OK
    );

    let (_, token) = open(server.addr, 3).await;
    let reply = delete(Session::with(&token)).await;
    assert_eq!(reply.status(), StatusCode::NO_CONTENT);
    assert_eq!(reply.header("vgi-session-close"), Some("true"));
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_eq!(delete(Session::with(&token)).await.status(), StatusCode::OK);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_lost(&add(server.addr, &Session::with(&token), 1).await);
}
