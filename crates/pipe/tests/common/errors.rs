//! The error a server answered a call with.

use vgirpc::wire::classify::{BatchKind, classify};
use vgirpc::wire::ipc::IpcBatch;
use vgirpc::wire::log::ErrorInfo;

pub(crate) fn error_of(stream: &[IpcBatch]) -> ErrorInfo {
    let last = stream.last().expect("an error batch");
    match classify(&last.batch, &last.metadata) {
        BatchKind::Error(info) => info,
        other => panic!("expected an error batch, got {other:?}"),
    }
}
