use arrow_array::RecordBatch;
use vgirpc_wire::ipc::IpcBatch;
use vgirpc_wire::metadata::Metadata;

use crate::error::RpcError;

/// A per-request channel beside the byte stream, such as a shared-memory
/// segment named by the client, through which large batches can travel.
pub trait SideChannel {
    /// Replaces a pointer batch received from the client with the batch it
    /// points to; other batches pass through unchanged.
    fn resolve(&self, batch: IpcBatch) -> Result<IpcBatch, RpcError>;

    /// Moves a data batch into the channel, returning the pointer batch to
    /// send instead, or gives the batch back when it should travel inline.
    fn offload(&self, batch: RecordBatch, metadata: Metadata) -> (RecordBatch, Metadata);
}

/// What a transport offers: a side channel for each request that asks for one.
pub trait SideChannels {
    /// Attaches the side channel a request names in its metadata, if any.
    fn attach(&self, request_metadata: &Metadata)
    -> Result<Option<Box<dyn SideChannel>>, RpcError>;

    /// Called on the serving thread when a connection ends, so resources
    /// kept between its requests (such as a mapped segment) are let go.
    fn connection_closed(&self) {}
}

/// A transport without side channels.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSideChannels;

impl SideChannels for NoSideChannels {
    fn attach(&self, _: &Metadata) -> Result<Option<Box<dyn SideChannel>>, RpcError> {
        Ok(None)
    }
}
