//! Serving a byte-stream connection (a pipe, a Unix socket): requests one
//! after another, each stream in lockstep until it ends.

use std::io::{Read, Write};

use vgirpc_wire::WireError;
use vgirpc_wire::ipc::{StreamReader, StreamWriter, empty_schema};
use vgirpc_wire::metadata;
use vgirpc_wire::request::{Request, request_error_info};

use crate::active_stream::Step;
use crate::answer::{Answer, FailureKind, error_batch};
use crate::context::{Peer, TransportKind};
use crate::error::{ServeError, is_disconnect};
use crate::server::{Call, OpenStream, Server};
use crate::side::{NoSideChannels, SideChannel, SideChannels};

/// Whether a connection has more requests after [`Server::serve_one`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// One request was answered; more may follow.
    Request,
    /// The peer closed the connection between requests.
    Closed,
}

impl Server {
    /// Answers requests on one connection until the peer closes it.
    ///
    /// Returns `Ok(())` on a clean close. A peer that sends bytes which are
    /// not Arrow IPC gets an error response first, then the connection ends,
    /// because the byte stream cannot be resynchronised.
    pub fn serve<R: Read, W: Write>(
        &self,
        reader: R,
        writer: W,
        kind: TransportKind,
    ) -> Result<(), ServeError> {
        self.serve_with(reader, writer, &Peer::anonymous(kind), &NoSideChannels)
    }

    /// [`Server::serve`] for a connection from `peer`, with the side
    /// channels (shared memory) the transport offers.
    pub fn serve_with<R: Read, W: Write>(
        &self,
        mut reader: R,
        mut writer: W,
        peer: &Peer,
        side: &dyn SideChannels,
    ) -> Result<(), ServeError> {
        self.notify_serve_start(peer.transport)?;
        let outcome = loop {
            match self.serve_one(&mut reader, &mut writer, peer, side) {
                Ok(Served::Request) => {}
                Ok(Served::Closed) => break Ok(()),
                Err(e) if e.is_disconnect() => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        side.connection_closed();
        outcome
    }

    /// Reads one request from `reader` and answers it on `writer`.
    pub fn serve_one<R: Read, W: Write>(
        &self,
        reader: &mut R,
        writer: &mut W,
        peer: &Peer,
        side: &dyn SideChannels,
    ) -> Result<Served, ServeError> {
        let mut request_stream = match StreamReader::try_open(&mut *reader, self.limits()) {
            Ok(Some(stream)) => stream,
            Ok(None) => return Ok(Served::Closed),
            Err(err) => return Err(reject_stream(writer, err)),
        };
        let first = match request_stream.next_batch() {
            Ok(first) => first,
            Err(err) => return Err(reject_stream(writer, err)),
        };
        // Draining before any validation keeps the byte stream aligned on
        // the next request even when this one is rejected.
        if let Err(err) = request_stream.drain() {
            return Err(reject_stream(writer, err));
        }
        let request = first
            .ok_or_else(|| WireError::Protocol("request stream carried no batch".into()))
            .and_then(Request::from_batch);
        let request = match request {
            Ok(request) => request,
            Err(err) => {
                let answer = Answer::error(
                    empty_schema(),
                    FailureKind::Protocol,
                    request_error_info(&err),
                    "",
                );
                answer.write_to(writer)?;
                return Ok(Served::Request);
            }
        };
        let channel = match side.attach(&request.metadata) {
            Ok(channel) => channel,
            Err(err) => {
                let answer = Answer::error(
                    empty_schema(),
                    FailureKind::Protocol,
                    err.info().clone(),
                    "",
                );
                answer.write_to(writer)?;
                return Ok(Served::Request);
            }
        };
        match self.dispatch_from(request, peer) {
            Call::Answer(answer) => {
                let answer = offload(answer, channel.as_deref());
                answer.write_to(writer)?;
                if let Some(record) = &answer.record {
                    self.emit(record);
                }
            }
            Call::Stream(open) => {
                self.drive_stream(reader, writer, *open, channel.as_deref())?;
            }
        }
        Ok(Served::Request)
    }

    /// Runs the lockstep phase of a stream over a byte stream (WIRE_PROTOCOL §9).
    fn drive_stream<R: Read, W: Write>(
        &self,
        reader: &mut R,
        writer: &mut W,
        open: OpenStream,
        channel: Option<&dyn SideChannel>,
    ) -> Result<(), ServeError> {
        let OpenStream {
            header,
            init_logs,
            mut stream,
        } = open;
        if let Some(header) = header {
            header.write_to(writer)?;
        }
        let mut input =
            StreamReader::try_open(&mut *reader, self.limits())?.ok_or(WireError::Truncated {
                context: "stream input schema",
            })?;
        let output_schema = stream.output_schema().clone();
        let mut out = StreamWriter::try_new(&mut *writer, &output_schema)?;
        for (batch, md) in &init_logs {
            out.write(batch, md)?;
        }
        out.get_mut().flush()?;

        let mut connection_error = None;
        loop {
            let batch = match input.next_batch() {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(err) => {
                    let info = request_error_info(&err);
                    let (batch, md) = error_batch(&output_schema, &info, stream.request_id());
                    // The peer may be gone; the read error is what ends the connection.
                    let _ = out.write(&batch, &md);
                    connection_error = Some(err);
                    break;
                }
            };
            if batch.metadata.contains(metadata::CANCEL) {
                stream.cancel();
                break;
            }
            let resolved = match channel {
                Some(channel) => channel.resolve(batch),
                None => Ok(batch),
            };
            let batch = match resolved {
                Ok(resolved) => resolved,
                Err(err) => {
                    let (batch, md) = error_batch(&output_schema, err.info(), stream.request_id());
                    out.write(&batch, &md)?;
                    break;
                }
            };
            let (entries, done) = match stream.step(batch) {
                Step::Continue(entries) => (entries, false),
                Step::Finished(entries) | Step::Failed(entries, _) => (entries, true),
            };
            for (batch, md) in entries {
                let (batch, md) = match channel {
                    Some(channel) => channel.offload(batch, md),
                    None => (batch, md),
                };
                out.write(&batch, &md)?;
            }
            out.get_mut().flush()?;
            if done {
                break;
            }
        }
        out.finish()?.flush()?;
        // On a byte stream the whole stream is one call: one record.
        self.emit(&stream.take_record());
        if let Some(err) = connection_error {
            return Err(err.into());
        }
        // The client ends its input stream once it has seen ours end; reading
        // up to its EOS leaves the connection ready for the next request.
        input.drain()?;
        Ok(())
    }
}

/// Moves an answer's data batches into the side channel where it has room.
fn offload(mut answer: Answer, channel: Option<&dyn SideChannel>) -> Answer {
    if let Some(channel) = channel {
        answer.batches = answer
            .batches
            .into_iter()
            .map(|(batch, md)| channel.offload(batch, md))
            .collect();
    }
    answer
}

/// Answers a request stream that is not valid Arrow IPC, then reports the
/// failure so the caller ends the connection.
fn reject_stream<W: Write>(writer: &mut W, err: WireError) -> ServeError {
    if let WireError::Io(e) = &err
        && is_disconnect(e)
    {
        return ServeError::Wire(err);
    }
    let answer = Answer::error(
        empty_schema(),
        FailureKind::Protocol,
        request_error_info(&err),
        "",
    );
    // The peer may already be gone; the original error is what matters.
    let _ = answer.write_to(writer);
    ServeError::Wire(err)
}
