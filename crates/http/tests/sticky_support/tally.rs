//! The service under test: a counter kept in a sticky session, reached by
//! unary calls and by both stream kinds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use arrow_array::{Array, Int64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::{
    ArrowStruct, CallContext, ExchangeState, OutputCollector, ProducerState, RpcError, Server,
    SessionState, Stream,
};

#[vgirpc::service]
pub(crate) trait Tally {
    /// Opens a session holding a counter.
    fn open(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError>;
    /// Opens a session living `millis`.
    fn open_briefly(&self, ctx: &CallContext, initial: i64, millis: i64) -> Result<i64, RpcError>;
    /// Adds to the counter, slowly: read, wait `millis`, write.
    fn add(&self, ctx: &CallContext, by: i64, millis: i64) -> Result<i64, RpcError>;
    /// Waits, holding its session, until another call is waiting too;
    /// false if none came within 30 s.
    fn meet(&self, ctx: &CallContext) -> Result<bool, RpcError>;
    /// Closes the session, returning the counter.
    fn close(&self, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Closes the session and opens a new one holding the same value.
    fn reopen(&self, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Emits the counter, incremented, `count` times.
    fn ticks(&self, count: i64) -> Result<Stream, RpcError>;
    /// Adds each input's `by` to the counter and emits it.
    fn adder(&self) -> Result<Stream, RpcError>;
}

/// The [`Tally`] service, counting in `closes` the sessions it closes.
pub(crate) fn tally(closes: Arc<AtomicUsize>) -> Server {
    Server::new(TallyServer::new(TallyImpl {
        closes,
        met: Arc::default(),
    }))
    .unwrap()
}

/// A one-column integer schema.
pub(crate) fn value_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]))
}

struct Counter {
    value: i64,
    busy: AtomicBool,
    closes: Arc<AtomicUsize>,
}

impl SessionState for Counter {
    fn close(&mut self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

struct TallyImpl {
    closes: Arc<AtomicUsize>,
    /// Calls inside `meet`.
    met: Arc<(Mutex<usize>, Condvar)>,
}

impl TallyImpl {
    fn counter(&self, value: i64) -> Counter {
        Counter {
            value,
            busy: AtomicBool::new(false),
            closes: self.closes.clone(),
        }
    }
}

fn no_counter() -> RpcError {
    RpcError::runtime_error("no counter bound")
}

impl Tally for TallyImpl {
    fn open(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError> {
        ctx.open_session(self.counter(initial))?;
        Ok(initial)
    }
    fn open_briefly(&self, ctx: &CallContext, initial: i64, millis: i64) -> Result<i64, RpcError> {
        let ttl = Duration::from_millis(millis as u64);
        ctx.open_session_with_ttl(self.counter(initial), ttl)?;
        Ok(initial)
    }
    fn add(&self, ctx: &CallContext, by: i64, millis: i64) -> Result<i64, RpcError> {
        let mut counter = ctx.session::<Counter>().ok_or_else(no_counter)?;
        assert!(
            !counter.busy.swap(true, Ordering::SeqCst),
            "two requests used one session at once"
        );
        let seen = counter.value;
        std::thread::sleep(Duration::from_millis(millis as u64));
        counter.value = seen + by;
        counter.busy.store(false, Ordering::SeqCst);
        Ok(counter.value)
    }
    fn meet(&self, ctx: &CallContext) -> Result<bool, RpcError> {
        let _held = ctx.session::<Counter>().ok_or_else(no_counter)?;
        let (count, arrived) = &*self.met;
        let mut count = count.lock().unwrap();
        *count += 1;
        arrived.notify_all();
        let (count, _) = arrived
            .wait_timeout_while(count, Duration::from_secs(30), |count| *count < 2)
            .unwrap();
        Ok(*count >= 2)
    }
    fn close(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        let last = ctx.session::<Counter>().ok_or_else(no_counter)?.value;
        ctx.close_session()?;
        Ok(last)
    }
    fn reopen(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        let last = ctx.session::<Counter>().ok_or_else(no_counter)?.value;
        ctx.close_session()?;
        ctx.open_session(self.counter(last))?;
        Ok(last)
    }
    fn ticks(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            value_schema("value"),
            Ticks { count, done: 0 },
        ))
    }
    fn adder(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            value_schema("by"),
            value_schema("value"),
            Adder { turns: 0 },
        ))
    }
}

#[derive(Debug, Default, ArrowStruct)]
struct Ticks {
    count: i64,
    done: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Ticks {
    fn produce(&mut self, out: &mut OutputCollector, ctx: &CallContext) -> Result<(), RpcError> {
        if self.done == self.count {
            return out.finish();
        }
        let mut counter = ctx.session::<Counter>().ok_or_else(no_counter)?;
        counter.value += 1;
        self.done += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![counter.value]))])
    }
}

#[derive(Debug, Default, ArrowStruct)]
struct Adder {
    turns: i64,
}

#[vgirpc::stream_state]
impl ExchangeState for Adder {
    fn exchange(
        &mut self,
        input: &vgirpc::AnnotatedBatch,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let by = input
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| RpcError::type_error("expected int64"))?;
        let mut counter = ctx.session::<Counter>().ok_or_else(no_counter)?;
        counter.value += by.iter().flatten().sum::<i64>();
        self.turns += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![counter.value]))])
    }
}
