//! Dispatch hooks behind the HTTP transport: every unary call and every
//! stream turn reaches them, with its status, caller, address and stream
//! state.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod int_param;
    pub(crate) mod probe;
    pub(crate) mod probe_turns;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
    pub(crate) mod stream_token;
}

use std::sync::Arc;

use bytes::Bytes;
use common::int_param::int;
use common::probe::{ProbeImpl, ProbeServer, post, start_with};
use common::probe_turns::{tick, turn, turn_by_turn};
use common::request::request;
use common::send::send;
use http_body_util::Full;
use vgirpc::wire::metadata::Metadata;
use vgirpc::{CallRecord, DispatchHook, Server};
use vgirpc_http::{AuthContext, bearer_static};

/// Collects every record the server hands to its hooks.
#[derive(Clone, Default)]
struct Records(Arc<std::sync::Mutex<Vec<CallRecord>>>);

impl DispatchHook for Records {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_and_stream_turn_reaches_the_hooks() {
    let server = Server::new(ProbeServer::new(ProbeImpl)).unwrap();
    let records = Records::default();
    server.add_hook(records.clone());
    let tokens = [(
        "t".to_owned(),
        AuthContext::authenticated("bearer", "alice"),
    )];
    let server = start_with(
        server,
        turn_by_turn().with_authenticate(bearer_static(tokens)),
    )
    .await;
    let authorized = |path: &str, body: Vec<u8>| {
        post(path, body.clone())
            .header("authorization", "Bearer t")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };

    let body = request(
        "fail",
        vec![(
            "message",
            Arc::new(arrow_array::StringArray::from(vec!["no"])),
        )],
    );
    send(server.addr, authorized("/fail", body)).await;
    let reply = send(
        server.addr,
        authorized("/count/init", request("count", vec![("limit", int(1))])),
    )
    .await;
    let token = reply.stream_token().unwrap();
    send(
        server.addr,
        authorized("/count/exchange", turn(&token, tick(), Metadata::new())),
    )
    .await;

    let records = records.0.lock().unwrap().clone();
    assert_eq!(records.len(), 3, "{records:#?}");
    let (fail, init, last) = (&records[0], &records[1], &records[2]);
    assert_eq!(
        fail.http_status,
        Some(500),
        "logged as the reference logs it"
    );
    assert!(fail.is_error());
    assert_eq!(fail.auth.principal.as_deref(), Some("alice"));
    assert!(fail.remote_addr.starts_with("127.0.0.1:"));
    assert_eq!(init.method, "count");
    assert!(init.response_state.is_some());
    assert!(init.request_state.is_none());
    assert_eq!(init.stream_id, last.stream_id);
    assert_eq!(init.stream_id.as_ref().map(String::len), Some(32));
    assert_eq!(last.request_state, init.response_state);
    assert!(last.response_state.is_none(), "the stream finished");
    assert_eq!(last.http_status, Some(200));
}
