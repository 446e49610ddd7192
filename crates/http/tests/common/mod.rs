//! The HTTP harness shared by this crate's integration tests: sending a
//! request over a fresh connection, building request bodies, and reading
//! the Arrow streams of a reply.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{Field, Schema};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use vgirpc::wire::ipc::{IpcBatch, StreamReader, empty_schema, write_stream_bytes};
use vgirpc::wire::log::{ErrorInfo, LogRecord};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request as RpcRequest;

/// A whole response.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every batch of every IPC stream in the body.
    pub(crate) fn batches(&self) -> Vec<IpcBatch> {
        let mut cursor = std::io::Cursor::new(self.body.to_vec());
        let mut out = Vec::new();
        while let Some(mut reader) =
            StreamReader::try_open(&mut cursor, Default::default()).unwrap()
        {
            while let Some(batch) = reader.next_batch().unwrap() {
                out.push(batch);
            }
        }
        out
    }

    /// The error an EXCEPTION batch carries, if there is one.
    pub(crate) fn error(&self) -> Option<ErrorInfo> {
        self.batches()
            .into_iter()
            .find(|b| b.metadata.get(metadata::LOG_LEVEL) == Some("EXCEPTION"))
            .map(|b| ErrorInfo::from_log_record(&LogRecord::from_metadata(&b.metadata).unwrap()))
    }

    /// The continuation token, if the reply hands one out.
    pub(crate) fn stream_token(&self) -> Option<String> {
        self.batches()
            .iter()
            .find_map(|b| b.metadata.get(metadata::STREAM_STATE).map(str::to_owned))
    }

    /// The first column of every data batch, as integers.
    pub(crate) fn ints(&self) -> Vec<i64> {
        self.batches()
            .iter()
            .filter(|b| b.batch.num_rows() > 0)
            .flat_map(|b| {
                let column = b
                    .batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                column.values().to_vec()
            })
            .collect()
    }
}

/// Sends `request` on a new connection to `addr` and reads the whole reply.
pub(crate) async fn send<B>(addr: SocketAddr, request: Request<B>) -> Reply
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A request stream for `method` with one-row parameter columns.
pub(crate) fn request(method: &str, params: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    request_with(method, params, Metadata::new())
}

/// [`request`], with `extra` metadata on the request batch.
pub(crate) fn request_with(
    method: &str,
    params: Vec<(&str, ArrayRef)>,
    extra: Metadata,
) -> Vec<u8> {
    let mut md = RpcRequest::metadata_for(method);
    for (k, v) in extra.iter() {
        md.insert(k, v);
    }
    let batch = if params.is_empty() {
        RecordBatch::new_empty(empty_schema())
    } else {
        let fields: Vec<Field> = params
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        let columns = params.into_iter().map(|(_, array)| array).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap()
}

/// A one-row integer parameter.
pub(crate) fn int(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}

pub(crate) mod clock;
pub(crate) mod errors;
/// The probe service the HTTP transport tests share, and its harness.
pub(crate) mod probe;
