use arrow_array::RecordBatch;
use vgirpc_wire::describe::MethodDescription;

use crate::context::{CallContext, TransportKind};
use crate::error::RpcError;
use crate::maybe_ready::MaybeReady;
use crate::stream::ErasedStream;

/// What calling a method produced.
#[derive(Debug)]
pub enum Outcome {
    /// The one-row result batch of a unary method (zero rows, no columns,
    /// for methods without a return value).
    Unary(RecordBatch),
    /// A stream to drive; its header, if any, is already encoded.
    Stream(ErasedStream),
}

/// A service the server can dispatch to, independent of any transport.
///
/// `#[vgirpc::service]` implements it for the `<Trait>Server` wrapper it
/// generates; implementing it by hand is possible but rarely needed.
pub trait Service: Send + Sync + 'static {
    /// Name reported as `vgi_rpc.protocol_name` (the trait's name).
    fn protocol_name(&self) -> &str;

    /// Every method, in declaration order.
    fn methods(&self) -> &[MethodDescription];

    /// Decodes `params`, runs the method and encodes its result.
    ///
    /// `index` is the method's position in [`Service::methods`].
    ///
    /// A plain method returns [`MaybeReady::Ready`]; an `async fn` method
    /// decodes its parameters, then returns its future as
    /// [`MaybeReady::Pending`] for the transport to await or block on.
    fn call<'a>(
        &'a self,
        index: usize,
        params: &'a RecordBatch,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<Outcome, RpcError>>;

    /// Fired once when serving starts on a transport, before any request.
    fn on_serve_start(&self, _kind: TransportKind) -> Result<(), RpcError> {
        Ok(())
    }
}
