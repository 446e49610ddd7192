//! The calls over HTTP (WIRE_PROTOCOL §10): a unary call is one request,
//! a stream one request to start it and one per later turn, tied together
//! by the state token the server hands out. Written once, as async code;
//! the blocking transport runs the same functions on a runtime of its own.

use arrow_array::RecordBatch;
use vgirpc_wire::ipc::{IpcBatch, empty_schema};
use vgirpc_wire::log::empty_batch;
use vgirpc_wire::metadata::{self, Metadata};

use super::core::{HttpCore, Repeat};
use super::payload::Payload;
use super::reply::{Turn, body_of, open_reply};
use super::sticky::SessionState;
use crate::ClientError;
use crate::client::{Received, Special, receive};
use crate::transport::CallIo;

impl HttpCore {
    /// A unary call: one `POST {prefix}/{method}`.
    pub(crate) async fn unary(
        &self,
        session: &mut Option<SessionState>,
        method: &str,
        params: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<IpcBatch, ClientError> {
        let body = Payload::of_batch(params, &crate::trace::request_metadata(method))?;
        let reply = self
            .post(&format!("/{method}"), body, Repeat::Safe, session)
            .await?;
        let mut rest = body_of(&reply);
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        let data = self.read_item(&mut reader, io).await?;
        reader.drain().map_err(ClientError::from_wire)?;
        data.ok_or_else(|| {
            ClientError::Protocol(format!(
                "the response to {method}() ended without a result batch"
            ))
        })
    }

    /// Starts a stream (`POST {prefix}/{method}/init`); with `header`, also
    /// reads the header the method declares. A producer's first batches
    /// come in the same response and wait in the cursor.
    pub(crate) async fn open_stream(
        &self,
        session: &mut Option<SessionState>,
        method: &str,
        params: &RecordBatch,
        header: bool,
        io: &mut CallIo<'_>,
    ) -> Result<(Cursor, Option<IpcBatch>), ClientError> {
        let body = Payload::of_batch(params, &crate::trace::request_metadata(method))?;
        let reply = self
            .post(&format!("/{method}/init"), body, Repeat::Safe, session)
            .await?;
        let mut rest = body_of(&reply);
        let header = if header {
            let mut reader = open_reply(&reply, &mut rest, io.limits)?;
            let header = self.read_item(&mut reader, io).await?;
            reader.drain().map_err(ClientError::from_wire)?;
            header
        } else {
            None
        };
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        let mut turn = self.read_output(&mut reader, io).await?;
        if turn.failure.is_none() {
            reader.drain().map_err(ClientError::from_wire)?;
        }
        // A stream that fails before its first batch fails to start.
        if turn.batches.is_empty()
            && let Some(err) = turn.failure.take()
        {
            return Err(err);
        }
        let cursor = Cursor {
            method: method.to_owned(),
            turn,
        };
        Ok((cursor, header))
    }
}

/// Where a stream over HTTP stands: its state token, and a producer's
/// batches received but not yet asked for.
#[derive(Debug)]
pub(crate) struct Cursor {
    method: String,
    turn: Turn,
}

impl Cursor {
    fn exchange_path(&self) -> String {
        format!("/{}/exchange", self.method)
    }

    /// The token, or the error of a stream that has none left.
    fn token(&self) -> Result<String, ClientError> {
        self.turn
            .token
            .clone()
            .ok_or_else(|| ClientError::Protocol("the stream has no state token left".into()))
    }

    /// Producer streams: the next batch, continuing the producer where
    /// the last response stopped when none is left; `None` once it has
    /// finished.
    pub(crate) async fn tick(
        &mut self,
        core: &HttpCore,
        session: &mut Option<SessionState>,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        loop {
            if let Some(batch) = self.turn.batches.pop_front() {
                return Ok(Some(batch));
            }
            if let Some(err) = self.turn.failure.take() {
                self.turn.token = None;
                return Err(err);
            }
            if self.turn.finished || self.turn.token.is_none() {
                return Ok(None);
            }
            let md = Metadata::new().with(metadata::STREAM_STATE, self.token()?);
            let body = Payload::of_batch(&empty_batch(&empty_schema()), &md)?;
            let path = self.exchange_path();
            let reply = core.post(&path, body, Repeat::Safe, session).await?;
            let mut rest = body_of(&reply);
            let mut reader = open_reply(&reply, &mut rest, io.limits)?;
            self.turn = core.read_output(&mut reader, io).await?;
        }
    }

    /// Exchange streams: sends `input` and returns the answer, or `None`
    /// when the server ended the stream instead.
    pub(crate) async fn exchange(
        &mut self,
        core: &HttpCore,
        session: &mut Option<SessionState>,
        input: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        let md = Metadata::new().with(metadata::STREAM_STATE, self.token()?);
        let body = Payload::of_batch(input, &md)?;
        let path = self.exchange_path();
        let reply = core.post(&path, body, Repeat::Never, session).await?;
        let mut rest = body_of(&reply);
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        let answer = core.read_item(&mut reader, io).await;
        if answer.is_err() {
            // The error ended the stream on the server.
            self.turn.token = None;
        }
        let Some(mut answer) = answer? else {
            self.turn.token = None;
            return Ok(None);
        };
        match answer.metadata.remove(metadata::STREAM_STATE) {
            Some(token) => {
                self.turn.token = Some(token);
                reader.drain().map_err(ClientError::from_wire)?;
            }
            // A server answers an exchange whose input has no columns as it
            // answers a producer: the token follows the data batch in a
            // batch of its own. Without one the old token stays, as with
            // the reference client.
            None => {
                while let Some(item) = receive(&mut reader, io)? {
                    if let Received::Special(batch, Special::StateToken) = item
                        && let Some(token) = batch.metadata.get(metadata::STREAM_STATE)
                    {
                        self.turn.token = Some(token.to_owned());
                    }
                }
            }
        }
        Ok(Some(answer))
    }

    /// Ends the stream. Closing needs no request: the server keeps nothing
    /// between requests but what the token carried. Cancelling a live
    /// stream sends the token once more, marked cancelled, so the method's
    /// cancel hook runs.
    pub(crate) async fn finish(
        &mut self,
        core: &HttpCore,
        session: &mut Option<SessionState>,
        cancel: bool,
        io: &mut CallIo<'_>,
    ) -> Result<(), ClientError> {
        self.turn.batches.clear();
        let token = self.turn.token.take();
        let live = !self.turn.finished && self.turn.failure.take().is_none();
        let Some(token) = token.filter(|_| cancel && live) else {
            return Ok(());
        };
        let md = Metadata::new()
            .with(metadata::STREAM_STATE, token)
            .with(metadata::CANCEL, "1");
        let body = Payload::of_batch(&empty_batch(&empty_schema()), &md)?;
        let path = self.exchange_path();
        let reply = core.post(&path, body, Repeat::Never, session).await?;
        let mut rest = body_of(&reply);
        let mut reader = open_reply(&reply, &mut rest, io.limits)?;
        // What the cancelled stream still says is of no use; its logs are
        // delivered, its error (if any) dropped, as on a pipe.
        loop {
            match receive(&mut reader, io) {
                Ok(Some(_)) | Err(ClientError::Remote { .. }) => {}
                Ok(None) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
}
