use vgirpc::{ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError};

#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct Ticks {
    pub left: i64,
}

#[vgirpc::stream_state(name = "ticks")]
impl ProducerState for Ticks {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        out.finish()
    }
}

fn main() {}
