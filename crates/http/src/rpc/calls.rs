//! Reading a request and dispatching it: the unary, init and exchange
//! endpoints, and the access record each call leaves.

use std::io::Cursor;

use bytes::Bytes;
use http::StatusCode;
use vgirpc::transport::{ActiveStream, Call, OpenStream};
use vgirpc::wire::WireError;
use vgirpc::wire::ipc::{
    Chunks, IpcBatch, ReadLimits, StreamReader, empty_schema, write_stream_bytes,
};
use vgirpc::wire::log::{ErrorInfo, quoted};
use vgirpc::wire::metadata;
use vgirpc::wire::request::{Request, request_error_info};
use vgirpc::{CallRecord, CallStatus};

use super::{Caller, Rpc, Turn};
use crate::external::pointer_url;
use crate::reply::{Failure, Reply};

impl Rpc {
    /// `POST {prefix}/{method}`.
    pub(crate) fn unary(&self, method: &str, body: &Bytes, caller: &Caller) -> Reply {
        let request = match self.request(method, body, caller) {
            Ok(request) => request,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        match self.server.dispatch_from(request, &caller.peer()) {
            Call::Answer(mut answer) => {
                let record = answer.record.take();
                let (reply, failure) = self.unary_reply(method, answer, &caller.request_id);
                if let Some(record) = record {
                    self.emit(*record, caller, reply.status, failure.as_ref());
                }
                reply
            }
            Call::Stream(_) => unreachable_stream(method, &caller.request_id),
        }
    }

    /// `POST {prefix}/{method}/init`: a producer runs until it finishes or
    /// the body reaches `max_response_bytes`; an exchange answers with its
    /// first token.
    pub(crate) fn init(&self, method: &str, body: &Bytes, caller: &Caller) -> Reply {
        let request = match self.request(method, body, caller) {
            Ok(request) => request,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        match self.server.dispatch_from(request, &caller.peer()) {
            Call::Answer(mut answer) => {
                let record = answer.record.take();
                let reply = Reply::of_answer(&answer);
                if let Some(record) = record {
                    self.emit(*record, caller, reply.status, None);
                }
                reply
            }
            Call::Stream(open) => {
                let OpenStream {
                    header,
                    init_logs,
                    mut stream,
                } = *open;
                let (reply, turn) = self.opened(header, init_logs, &mut stream, caller);
                let mut record = stream.take_record();
                record.response_state = turn.response_state;
                self.emit(record, caller, reply.status, turn.failure.as_ref());
                reply
            }
        }
    }

    /// `POST {prefix}/{method}/exchange`: one turn of a stream whose state
    /// arrives in the input batch's token.
    pub(crate) fn exchange(&self, method: &str, body: &Bytes, caller: &Caller) -> Reply {
        let opened = || -> Result<(IpcBatch, ActiveStream, Vec<u8>), Failure> {
            // Only the first batch matters; later bytes are not read.
            let input = read_batch(body, self.server.limits(), false)?;
            let token = input.metadata.get(metadata::STREAM_STATE).ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "RuntimeError",
                    "Missing state token in exchange request",
                )
            })?;
            let (stream, state) = self.restore(method, token, caller)?;
            Ok((input, stream, state))
        };
        let (input, mut stream, request_state) = match opened() {
            Ok(opened) => opened,
            Err(failure) => return failure.reply(&caller.request_id),
        };
        let (reply, turn) = if input.metadata.contains(metadata::CANCEL) {
            stream.cancel();
            let body = write_stream_bytes(stream.output_schema(), [])
                .expect("an empty stream always encodes");
            let reply = Reply {
                status: StatusCode::OK,
                body: body.into(),
            };
            (reply, Turn::default())
        } else if stream.input_schema().fields().is_empty() {
            let mut body = Chunks::new();
            let (status, turn) = self.produce(&mut stream, Vec::new(), caller, &mut body);
            (Reply { status, body }, turn)
        } else {
            self.exchange_turn(method, &mut stream, input, caller)
        };
        let mut record = stream.take_record();
        record.request_state = Some(request_state);
        record.response_state = turn.response_state;
        self.emit(record, caller, reply.status, turn.failure.as_ref());
        reply
    }

    /// Reads and validates a request for `method`, resolving a pointer batch.
    pub(super) fn request(
        &self,
        method: &str,
        body: &Bytes,
        caller: &Caller,
    ) -> Result<Request, Failure> {
        let batch = read_batch(body, self.server.limits(), true)?;
        let batch = match &self.external {
            // The dispatch metadata is the outer batch's; only the
            // parameters come from storage.
            Some(external) if pointer_url(&batch).is_some() => {
                let metadata = batch.metadata.clone();
                let resolved = external
                    .resolve(batch)
                    .map_err(|e| Failure::internal(e.info().clone(), empty_schema()))?;
                IpcBatch {
                    batch: resolved.batch,
                    metadata,
                }
            }
            _ => batch,
        };
        let mut request =
            Request::from_batch(batch).map_err(|e| Failure::bad_request(request_error_info(&e)))?;
        if request.method != method {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "TypeError",
                format!(
                    "Method name mismatch: URL path has '{}' but Arrow IPC custom_metadata \
                     'vgi_rpc.method' has '{}'. These must match.",
                    quoted(method),
                    quoted(&request.method)
                ),
            ));
        }
        if request.request_id().is_none() {
            request
                .metadata
                .insert(metadata::REQUEST_ID, caller.request_id.clone());
        }
        // The body's own context wins, as the reference's hook prefers it
        // to the one its HTTP middleware took from the headers.
        if request.metadata.get(metadata::TRACEPARENT).is_none() {
            for (name, value) in &caller.trace_headers {
                request.metadata.insert(*name, value.clone());
            }
        }
        Ok(request)
    }

    /// Completes a call's record with what HTTP knows and hands it to the
    /// server's hooks (the access log). The status is the one the reference
    /// logs: 500 for method failures, although the client sees 200.
    pub(super) fn emit(
        &self,
        mut record: CallRecord,
        caller: &Caller,
        status: StatusCode,
        failure: Option<&ErrorInfo>,
    ) {
        record.http_status = Some(status.as_u16());
        record.remote_addr = caller.remote_addr.clone();
        if let Some(info) = failure {
            record.status = CallStatus::Error {
                error_type: info.error_type.clone(),
                message: info.message.clone(),
            };
        }
        self.server.emit(&record);
    }
}

/// Stream methods reach `/init`, not the unary endpoint; the router checks.
fn unreachable_stream(method: &str, request_id: &str) -> Reply {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "TypeError",
        format!("Stream method '{method}' requires /init and /exchange endpoints"),
    )
    .reply(request_id)
}

/// Reads the first batch of a request body within the server's read
/// limits; with `drain`, also checks the stream is complete.
/// Reads the first batch of a request body; its buffers are slices of
/// `body`, which the request already holds, not copies.
fn read_batch(body: &Bytes, limits: ReadLimits, drain: bool) -> Result<IpcBatch, Failure> {
    let bad = |err: WireError| Failure::bad_request(request_error_info(&err));
    let mut reader = StreamReader::try_open_bytes(Cursor::new(body.clone()), limits)
        .map_err(bad)?
        .ok_or_else(|| {
            bad(WireError::Truncated {
                context: "request body is empty",
            })
        })?;
    let batch = reader.next_batch().map_err(bad)?.ok_or_else(|| {
        bad(WireError::Protocol(
            "request stream carried no batch".into(),
        ))
    })?;
    if drain {
        reader.drain().map_err(bad)?;
    }
    Ok(batch)
}
