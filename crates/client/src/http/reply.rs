//! Reading a response body: the IPC streams it holds, the errors that are
//! not Arrow, and what a producer's response says about the stream.

use std::collections::VecDeque;
use std::io::Cursor;

use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use vgirpc_wire::ipc::{IpcBatch, ReadLimits, StreamReader};
use vgirpc_wire::metadata;

use super::ARROW_STREAM;
use super::core::{HttpCore, Reply, http_error};
use crate::ClientError;
use crate::client::{Received, Special, receive};
use crate::transport::CallIo;

/// The unread part of a reply's body. The batches read from it share its
/// memory: a large answer is not copied again after it arrived.
pub(super) type Body = Cursor<Bytes>;

/// A reply's body, to be read from its start.
pub(super) fn body_of(reply: &Reply) -> Body {
    Cursor::new(reply.body.clone())
}

/// Opens the next IPC stream of a reply, turning answers that are not
/// Arrow into errors: a `401` is the server's authentication failure, the
/// rest are reported with their status and the start of their text.
pub(super) fn open_reply<'b>(
    reply: &Reply,
    body: &'b mut Body,
    limits: ReadLimits,
) -> Result<StreamReader<&'b mut Body>, ClientError> {
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(ClientError::Remote {
            error_type: "AuthenticationError".into(),
            message: String::from_utf8_lossy(&reply.body).into_owned(),
            traceback: String::new(),
            error_kind: None,
            request_id: None,
        });
    }
    let is_arrow = reply
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(ARROW_STREAM.as_bytes()));
    if !is_arrow {
        return Err(http_error(reply));
    }
    match StreamReader::try_open_bytes(body, limits) {
        Ok(Some(reader)) => Ok(reader),
        Ok(None) | Err(_) => Err(http_error(reply)),
    }
}

/// What one producer response held.
#[derive(Debug, Default)]
pub(super) struct Turn {
    pub(super) batches: VecDeque<IpcBatch>,
    pub(super) token: Option<String>,
    pub(super) finished: bool,
    pub(super) failure: Option<ClientError>,
}

impl HttpCore {
    /// Reads one answer of a unary call or exchange turn from `reader`:
    /// external pointers are fetched and resolved on the way.
    pub(super) async fn read_item(
        &self,
        reader: &mut StreamReader<&mut Body>,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        match receive(reader, io)? {
            None => Ok(None),
            Some(Received::Data(batch)) | Some(Received::Special(batch, Special::StateToken)) => {
                Ok(Some(batch))
            }
            Some(Received::Special(pointer, Special::External(url))) => {
                self.fetch_external(pointer, &url, io).await.map(Some)
            }
            Some(Received::Special(_, Special::ShmPointer)) => Err(shm_pointer()),
        }
    }

    /// Reads a producer's output (an init or continuation response): data
    /// batches in order, then the continuation token, the end of the
    /// stream, or the error that ended it.
    pub(super) async fn read_output(
        &self,
        reader: &mut StreamReader<&mut Body>,
        io: &mut CallIo<'_>,
    ) -> Result<Turn, ClientError> {
        let mut turn = Turn::default();
        loop {
            let item = match receive(reader, io) {
                Ok(item) => item,
                Err(err) if matches!(err, ClientError::Remote { .. }) => {
                    turn.failure = Some(err);
                    return Ok(turn);
                }
                Err(err) => return Err(err),
            };
            match item {
                None => {
                    turn.finished = true;
                    return Ok(turn);
                }
                Some(Received::Special(batch, Special::StateToken)) => {
                    turn.token = batch
                        .metadata
                        .get(metadata::STREAM_STATE)
                        .map(str::to_owned);
                    return Ok(turn);
                }
                Some(Received::Data(mut batch)) => {
                    batch.metadata.remove(metadata::STREAM_STATE);
                    turn.batches.push_back(batch);
                }
                Some(Received::Special(pointer, Special::External(url))) => {
                    let mut batch = match self.fetch_external(pointer, &url, io).await {
                        Ok(batch) => batch,
                        Err(err) if !err.is_connection_error() => {
                            turn.failure = Some(err);
                            return Ok(turn);
                        }
                        Err(err) => return Err(err),
                    };
                    batch.metadata.remove(metadata::STREAM_STATE);
                    turn.batches.push_back(batch);
                }
                Some(Received::Special(_, Special::ShmPointer)) => return Err(shm_pointer()),
            }
        }
    }
}

fn shm_pointer() -> ClientError {
    ClientError::Protocol("the server sent a shared-memory pointer over HTTP".into())
}
