//! What an endpoint answers: a status and a complete Arrow IPC body, and
//! how that becomes an HTTP response. Shared by the endpoints and the
//! layers that answer on their behalf (the sticky-session layer).

use arrow_schema::SchemaRef;
use bytes::Bytes;
use http::header::HeaderValue;
use http::{Response, StatusCode};
use vgirpc::transport::{Answer, FailureKind};
use vgirpc::wire::ipc::{Chunks, StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::ErrorInfo;

use crate::body::{self, ARROW_STREAM, ResponseBody};

/// Marks a method failure answered as `200`.
pub(crate) const RPC_ERROR: &str = "x-vgi-rpc-error";

/// What an endpoint answers: a status and an Arrow IPC body, in pieces
/// where large batches share their Arrow buffers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Chunks,
}

impl Reply {
    /// The reply of `answer`, with the status its failure (if any) calls for.
    pub(crate) fn of_answer(answer: &Answer) -> Self {
        Self {
            status: status_of(&answer.failure),
            body: encode_answer(answer),
        }
    }

    /// As an HTTP response. Failures the reference reports as 500 travel
    /// as 200 with `X-VGI-RPC-Error: true`, so clients that drop 5xx bodies
    /// still read the error batch.
    pub(crate) fn into_response(self) -> Response<ResponseBody> {
        let (status, flagged) = match self.status {
            StatusCode::INTERNAL_SERVER_ERROR => (StatusCode::OK, true),
            status => (status, false),
        };
        let mut response = body::response(status, ARROW_STREAM, Bytes::new());
        *response.body_mut() = ResponseBody::pieces(self.body.into_pieces());
        if flagged {
            response
                .headers_mut()
                .insert(RPC_ERROR, HeaderValue::from_static("true"));
        }
        response
    }
}

/// A request refused before, or instead of, normal dispatch.
pub(crate) struct Failure {
    status: StatusCode,
    info: ErrorInfo,
    schema: SchemaRef,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, error_type: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            info: ErrorInfo::new(error_type, message),
            schema: empty_schema(),
        }
    }

    pub(crate) fn bad_request(info: ErrorInfo) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            info,
            schema: empty_schema(),
        }
    }

    pub(crate) fn internal(info: ErrorInfo, schema: SchemaRef) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            info,
            schema,
        }
    }

    pub(crate) fn reply(self, request_id: &str) -> Reply {
        Reply {
            status: self.status,
            body: error_stream(&self.schema, &self.info, request_id).into(),
        }
    }
}

/// The HTTP status for an answer: 400 for protocol and type errors, 404 for
/// unknown methods, 500 for other method failures (the transport sends those
/// as 200 with `X-VGI-RPC-Error`).
fn status_of(failure: &Option<(FailureKind, ErrorInfo)>) -> StatusCode {
    match failure {
        None => StatusCode::OK,
        Some((FailureKind::Protocol, _)) => StatusCode::BAD_REQUEST,
        Some((FailureKind::UnknownMethod, _)) => StatusCode::NOT_FOUND,
        Some((_, info)) if info.error_type == "TypeError" => StatusCode::BAD_REQUEST,
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An answer as one IPC stream, its large batches' buffers shared.
pub(crate) fn encode_answer(answer: &Answer) -> Chunks {
    let mut body = Chunks::new();
    let written = (|| {
        let mut writer = StreamWriter::try_new(&mut body, &answer.schema)?;
        for (batch, md) in &answer.batches {
            writer.write_shared(batch, md)?;
        }
        writer.finish().map(drop)
    })();
    written.expect("answers encode into memory");
    body
}

/// A complete IPC stream holding one error batch.
pub(crate) fn error_stream(schema: &SchemaRef, info: &ErrorInfo, request_id: &str) -> Vec<u8> {
    let (batch, md) = vgirpc::transport::error_batch(schema, info, request_id);
    write_stream_bytes(schema, [(&batch, &md)]).expect("an error batch always encodes")
}
