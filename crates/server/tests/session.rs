//! The session runtime API as methods see it, against a minimal in-memory
//! host standing in for a sticky transport.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch};
use vgirpc::transport::{Answer, Call, SessionAction, SessionHost, StateGuard, Step};
use vgirpc::wire::ipc::{IpcBatch, empty_schema};
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    CallContext, OutputCollector, Peer, ProducerState, RpcError, Server, SessionState, Stream,
    TransportKind,
};

#[vgirpc::service]
pub trait Tally {
    /// Opens a session holding a tally.
    fn start(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError>;
    /// Adds to the session's tally.
    fn add(&self, ctx: &CallContext, by: i64) -> Result<i64, RpcError>;
    /// Closes the session.
    fn stop(&self, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Emits the tally, incremented, `count` times.
    fn ticks(&self, count: i64) -> Result<Stream, RpcError>;
}

#[derive(Debug)]
struct Total(i64);

impl SessionState for Total {}

struct NotATotal;

impl SessionState for NotATotal {}

fn no_total() -> RpcError {
    RpcError::runtime_error("no tally bound")
}

struct TallyImpl;

impl Tally for TallyImpl {
    fn start(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError> {
        ctx.open_session_with_ttl(Total(initial), Duration::from_secs(5))?;
        Ok(ctx.session::<Total>().ok_or_else(no_total)?.0)
    }
    fn add(&self, ctx: &CallContext, by: i64) -> Result<i64, RpcError> {
        let mut total = ctx.session::<Total>().ok_or_else(no_total)?;
        total.0 += by;
        Ok(total.0)
    }
    fn stop(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        let total = ctx.session::<Total>().ok_or_else(no_total)?;
        let last = total.0;
        // Closing while the state is borrowed is refused, not a deadlock.
        assert!(ctx.close_session().is_err());
        drop(total);
        ctx.close_session()?;
        assert!(ctx.session::<Total>().is_none());
        Ok(last)
    }
    fn ticks(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(value_schema("value"), Ticks(count)))
    }
}

fn value_schema(name: &str) -> arrow_schema::SchemaRef {
    Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        name,
        arrow_schema::DataType::Int64,
        true,
    )]))
}

struct Ticks(i64);

impl ProducerState for Ticks {
    fn produce(&mut self, out: &mut OutputCollector, ctx: &CallContext) -> Result<(), RpcError> {
        if self.0 == 0 {
            return out.finish();
        }
        self.0 -= 1;
        let mut total = ctx.session::<Total>().ok_or_else(no_total)?;
        total.0 += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![total.0]))])
    }
}

/// A host holding at most one session, kept across requests by the test.
#[derive(Default)]
struct Host {
    state: Mutex<Option<Box<dyn SessionState>>>,
    action: Mutex<Option<SessionAction>>,
    ttl: Mutex<Option<Duration>>,
}

impl Host {
    fn resumed(state: Box<dyn SessionState>) -> Self {
        Self {
            state: Mutex::new(Some(state)),
            action: Mutex::new(Some(SessionAction::Resume)),
            ttl: Mutex::new(None),
        }
    }
}

struct Guard<'a>(MutexGuard<'a, Option<Box<dyn SessionState>>>);

impl std::ops::Deref for Guard<'_> {
    type Target = dyn SessionState;
    fn deref(&self) -> &Self::Target {
        self.0.as_deref().unwrap()
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_deref_mut().unwrap()
    }
}

impl SessionHost for Host {
    fn open(&self, state: Box<dyn SessionState>, ttl: Option<Duration>) -> Result<(), RpcError> {
        let mut slot = self.state.lock().unwrap();
        if slot.is_some() {
            return Err(RpcError::runtime_error("already open"));
        }
        *slot = Some(state);
        *self.ttl.lock().unwrap() = ttl;
        *self.action.lock().unwrap() = Some(SessionAction::Open);
        Ok(())
    }
    fn close(&self) -> Result<(), RpcError> {
        let mut slot = self
            .state
            .try_lock()
            .map_err(|_| RpcError::runtime_error("state is borrowed"))?;
        if let Some(mut state) = slot.take() {
            state.close();
            *self.action.lock().unwrap() = Some(SessionAction::Close);
        }
        Ok(())
    }
    fn state(&self) -> Option<StateGuard<'_>> {
        let slot = self.state.lock().unwrap();
        slot.is_some()
            .then(|| Box::new(Guard(slot)) as StateGuard<'_>)
    }
    fn session_id(&self) -> Option<String> {
        self.action
            .lock()
            .unwrap()
            .is_some()
            .then(|| "ab".repeat(12))
    }
    fn action(&self) -> SessionAction {
        self.action.lock().unwrap().unwrap_or(SessionAction::None)
    }
}

fn request(method: &str, params: RecordBatch) -> Request {
    Request::from_batch(IpcBatch {
        batch: params,
        metadata: Request::metadata_for(method),
    })
    .unwrap()
}

fn int_params(name: &str, value: i64) -> RecordBatch {
    RecordBatch::try_new(
        value_schema(name),
        vec![Arc::new(Int64Array::from(vec![value]))],
    )
    .unwrap()
}

fn answer(call: Call) -> Answer {
    match call {
        Call::Answer(answer) => answer,
        Call::Stream(_) => panic!("expected an answer"),
    }
}

fn int_result(answer: &Answer) -> Result<i64, String> {
    if let Some((_, info)) = &answer.failure {
        return Err(format!("{}: {}", info.error_type, info.message));
    }
    let (batch, _) = answer.batches.last().unwrap();
    Ok(batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0))
}

#[test]
fn methods_open_use_and_close_sessions_through_the_host() {
    let server = Server::new(TallyServer::new(TallyImpl)).unwrap();

    let host = Arc::new(Host::default());
    let opened = answer(server.dispatch_from(
        request("start", int_params("initial", 7)),
        &Peer::anonymous(TransportKind::Http).with_session(Some(host.clone())),
    ));
    assert_eq!(int_result(&opened), Ok(7));
    assert_eq!(*host.ttl.lock().unwrap(), Some(Duration::from_secs(5)));
    let record = opened.record.unwrap();
    assert_eq!(record.session_action.as_deref(), Some("open"));
    assert_eq!(record.session_id.as_deref(), Some("ab".repeat(12).as_str()));

    // The next request resumes the state the first one left behind.
    let state = host.state.lock().unwrap().take().unwrap();
    let host = Arc::new(Host::resumed(state));
    let added = answer(server.dispatch_from(
        request("add", int_params("by", 10)),
        &Peer::anonymous(TransportKind::Http).with_session(Some(host.clone())),
    ));
    assert_eq!(int_result(&added), Ok(17));
    assert_eq!(
        added.record.unwrap().session_action.as_deref(),
        Some("resume")
    );

    let stopped = answer(server.dispatch_from(
        request("stop", RecordBatch::new_empty(empty_schema())),
        &Peer::anonymous(TransportKind::Http).with_session(Some(host.clone())),
    ));
    assert_eq!(int_result(&stopped), Ok(17));
    assert_eq!(
        stopped.record.unwrap().session_action.as_deref(),
        Some("close")
    );
    assert!(host.state.lock().unwrap().is_none());
}

#[test]
fn a_sticky_server_without_a_session_records_none() {
    let server = Server::new(TallyServer::new(TallyImpl)).unwrap();
    let host = Arc::new(Host::default());
    let refused = answer(server.dispatch_from(
        request("add", int_params("by", 1)),
        &Peer::anonymous(TransportKind::Http).with_session(Some(host)),
    ));
    assert_eq!(
        int_result(&refused),
        Err("RuntimeError: no tally bound".into())
    );
    let record = refused.record.unwrap();
    assert_eq!(record.session_action.as_deref(), Some("none"));
    assert_eq!(record.session_id, None);

    // Without a host, nothing is recorded and sessions cannot open.
    let plain = answer(server.dispatch(
        request("start", int_params("initial", 1)),
        TransportKind::Pipe,
    ));
    assert_eq!(
        int_result(&plain),
        Err("RuntimeError: sticky sessions not available on this transport".into())
    );
    let record = plain.record.unwrap();
    assert_eq!((record.session_action, record.session_id), (None, None));
}

#[test]
fn the_wrong_state_type_is_not_handed_out() {
    let server = Server::new(TallyServer::new(TallyImpl)).unwrap();
    let host = Arc::new(Host::resumed(Box::new(NotATotal)));
    let refused = answer(server.dispatch_from(
        request("add", int_params("by", 1)),
        &Peer::anonymous(TransportKind::Http).with_session(Some(host)),
    ));
    assert_eq!(
        int_result(&refused),
        Err("RuntimeError: no tally bound".into())
    );
}

#[test]
fn stream_steps_see_the_session_of_the_request_driving_them() {
    let server = Server::new(TallyServer::new(TallyImpl)).unwrap();
    let first = Arc::new(Host::resumed(Box::new(Total(0))));
    let Call::Stream(open) = server.dispatch_from(
        request("ticks", int_params("count", 2)),
        &Peer::anonymous(TransportKind::Http).with_session(Some(first.clone())),
    ) else {
        panic!("expected a stream");
    };
    let mut stream = open.stream;
    let tick = || IpcBatch {
        batch: RecordBatch::new_empty(empty_schema()),
        metadata: Metadata::new(),
    };
    let value = |step: Step| match step {
        Step::Continue(entries) => entries.last().unwrap().0.column(0).clone(),
        other => panic!("unexpected {other:?}"),
    };
    let one = value(stream.step(tick()));
    assert_eq!(
        one.as_any().downcast_ref::<Int64Array>().unwrap().value(0),
        1
    );

    // The next turn arrives as another request, with its own host.
    let state = first.state.lock().unwrap().take().unwrap();
    let second = Arc::new(Host::resumed(state));
    stream.bind_session(second.clone());
    let two = value(stream.step(tick()));
    assert_eq!(
        two.as_any().downcast_ref::<Int64Array>().unwrap().value(0),
        2
    );
    let record = stream.take_record();
    assert_eq!(record.session_action.as_deref(), Some("resume"));
}
