//! The state behind a running stream, as users write it (a plain or an
//! `async` step per batch) and as the server drives it (one erased form
//! whose step is ready at once or must be awaited).

use std::future::Future;

use vgirpc_wire::ipc::IpcBatch;

use crate::collector::OutputCollector;
use crate::context::CallContext;
use crate::error::RpcError;
use crate::maybe_ready::MaybeReady;

/// An input batch of a stream together with its custom metadata.
pub type AnnotatedBatch = IpcBatch;

/// A state's encoded bytes and the registry key that decodes them.
#[doc(hidden)]
#[derive(Debug)]
pub struct SavedState {
    /// Registry key of the state type.
    pub key: &'static str,
    /// The state's `ArrowStruct` IPC stream.
    pub bytes: Vec<u8>,
}

/// State of a producer stream: called once per client tick to emit the
/// next batch, until it calls [`OutputCollector::finish`].
pub trait ProducerState: Send + 'static {
    /// Emits exactly one data batch (plus any logs), or finishes the stream.
    fn produce(&mut self, out: &mut OutputCollector, ctx: &CallContext) -> Result<(), RpcError>;

    /// Called once when the client cancels the stream.
    fn on_cancel(&mut self, _ctx: &CallContext) {}

    /// Encodes the state so a stateless transport can resume it in another
    /// request or process. Provided by `#[vgirpc::stream_state]`, which also
    /// registers the matching decoder; without it the stream runs on
    /// connection transports only.
    #[doc(hidden)]
    fn save_state(&self) -> Result<SavedState, RpcError> {
        Err(not_resumable(std::any::type_name::<Self>()))
    }
}

/// State of an exchange stream: called once per client input batch.
pub trait ExchangeState: Send + 'static {
    /// Emits exactly one data batch (plus any logs) answering `input`.
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError>;

    /// Called once when the client cancels the stream.
    fn on_cancel(&mut self, _ctx: &CallContext) {}

    /// Encodes the state for stateless transports; see
    /// `ProducerState::save_state`.
    #[doc(hidden)]
    fn save_state(&self) -> Result<SavedState, RpcError> {
        Err(not_resumable(std::any::type_name::<Self>()))
    }
}

/// A [`ProducerState`] whose step awaits: rows read from a database, an
/// object store or another service. Write the step as an `async fn`:
///
/// ```
/// use vgirpc::{AsyncProducerState, CallContext, OutputCollector, RpcError};
///
/// struct Ticks { left: u32 }
///
/// impl AsyncProducerState for Ticks {
///     async fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
///         if self.left == 0 {
///             return out.finish();
///         }
///         self.left -= 1;
///         tokio::task::yield_now().await;
///         out.emit_arrays(vec![std::sync::Arc::new(
///             vgirpc::arrow::array::UInt32Array::from(vec![self.left]),
///         )])
///     }
/// }
/// ```
///
/// Open the stream with [`Stream::async_producer`](crate::Stream::async_producer).
pub trait AsyncProducerState: Send + 'static {
    /// Emits exactly one data batch (plus any logs), or finishes the stream.
    fn produce(
        &mut self,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;

    /// Called once when the client cancels the stream.
    fn on_cancel(&mut self, _ctx: &CallContext) {}

    /// Encodes the state for stateless transports; see
    /// `ProducerState::save_state`.
    #[doc(hidden)]
    fn save_state(&self) -> Result<SavedState, RpcError> {
        Err(not_resumable(std::any::type_name::<Self>()))
    }
}

/// An [`ExchangeState`] whose step awaits; open the stream with
/// [`Stream::async_exchange`](crate::Stream::async_exchange).
pub trait AsyncExchangeState: Send + 'static {
    /// Emits exactly one data batch (plus any logs) answering `input`.
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;

    /// Called once when the client cancels the stream.
    fn on_cancel(&mut self, _ctx: &CallContext) {}

    /// Encodes the state for stateless transports; see
    /// `ProducerState::save_state`.
    #[doc(hidden)]
    fn save_state(&self) -> Result<SavedState, RpcError> {
        Err(not_resumable(std::any::type_name::<Self>()))
    }
}

/// The error for a state without `#[vgirpc::stream_state]`.
pub(crate) fn not_resumable(type_name: &str) -> RpcError {
    RpcError::runtime_error(format!(
        "stream state {type_name} cannot continue in another request: this transport is \
         stateless, so annotate the state's ProducerState/ExchangeState impl with \
         #[vgirpc::stream_state] (and derive ArrowStruct for it)"
    ))
}

/// A producer state as the server drives it, sync or async alike.
pub(crate) trait Producer: Send {
    fn produce<'a>(
        &'a mut self,
        out: &'a mut OutputCollector,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<(), RpcError>>;
    fn on_cancel(&mut self, ctx: &CallContext);
    fn save_state(&self) -> Result<SavedState, RpcError>;
}

/// An exchange state as the server drives it, sync or async alike.
pub(crate) trait Exchange: Send {
    fn exchange<'a>(
        &'a mut self,
        input: &'a AnnotatedBatch,
        out: &'a mut OutputCollector,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<(), RpcError>>;
    fn on_cancel(&mut self, ctx: &CallContext);
    fn save_state(&self) -> Result<SavedState, RpcError>;
}

/// A state whose step runs to completion when called.
pub(crate) struct SyncStep<S>(pub(crate) S);

/// A state whose step is a future.
pub(crate) struct AsyncStep<S>(pub(crate) S);

impl<S: ProducerState> Producer for SyncStep<S> {
    fn produce<'a>(
        &'a mut self,
        out: &'a mut OutputCollector,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<(), RpcError>> {
        MaybeReady::Ready(self.0.produce(out, ctx))
    }
    fn on_cancel(&mut self, ctx: &CallContext) {
        self.0.on_cancel(ctx);
    }
    fn save_state(&self) -> Result<SavedState, RpcError> {
        self.0.save_state()
    }
}

impl<S: AsyncProducerState> Producer for AsyncStep<S> {
    fn produce<'a>(
        &'a mut self,
        out: &'a mut OutputCollector,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<(), RpcError>> {
        MaybeReady::Pending(Box::pin(self.0.produce(out, ctx)))
    }
    fn on_cancel(&mut self, ctx: &CallContext) {
        self.0.on_cancel(ctx);
    }
    fn save_state(&self) -> Result<SavedState, RpcError> {
        self.0.save_state()
    }
}

impl<S: ExchangeState> Exchange for SyncStep<S> {
    fn exchange<'a>(
        &'a mut self,
        input: &'a AnnotatedBatch,
        out: &'a mut OutputCollector,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<(), RpcError>> {
        MaybeReady::Ready(self.0.exchange(input, out, ctx))
    }
    fn on_cancel(&mut self, ctx: &CallContext) {
        self.0.on_cancel(ctx);
    }
    fn save_state(&self) -> Result<SavedState, RpcError> {
        self.0.save_state()
    }
}

impl<S: AsyncExchangeState> Exchange for AsyncStep<S> {
    fn exchange<'a>(
        &'a mut self,
        input: &'a AnnotatedBatch,
        out: &'a mut OutputCollector,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<(), RpcError>> {
        MaybeReady::Pending(Box::pin(self.0.exchange(input, out, ctx)))
    }
    fn on_cancel(&mut self, ctx: &CallContext) {
        self.0.on_cancel(ctx);
    }
    fn save_state(&self) -> Result<SavedState, RpcError> {
        self.0.save_state()
    }
}
