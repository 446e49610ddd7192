//! The pipe protocol over a byte-stream [`Connection`] (WIRE_PROTOCOL §5,
//! §6, §9), optionally with a shared-memory side channel (§11).
//!
//! One request stream goes out per call. A unary call reads one response
//! stream; a stream call reads the header stream first when the method
//! declares one, then keeps one input and one output IPC stream open and
//! drives them in lockstep.

use std::io::{Read, Write};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use vgirpc_wire::ipc::{IpcBatch, ReadLimits, StreamReader, StreamWriter};
use vgirpc_wire::log::empty_batch;
use vgirpc_wire::metadata::{self, Metadata};

use crate::ClientError;
use crate::client::{Received, Special, open_response, receive};
use crate::shm::{ShmSegment, ShmTransport};
use crate::transport::sealed::{Engine, StreamEngine};
use crate::transport::{CallIo, Connection};

impl<C: Connection> Engine for C {
    type Stream<'a>
        = PipeStream<'a, C::Reader, C::Writer>
    where
        Self: 'a;

    fn unary(
        &mut self,
        method: &str,
        params: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<IpcBatch, ClientError> {
        let (reader, writer) = self.io();
        unary(reader, writer, None, method, params, io)
    }

    fn open_stream(
        &mut self,
        method: &str,
        params: &RecordBatch,
        header: bool,
        io: &mut CallIo<'_>,
    ) -> Result<(Self::Stream<'_>, Option<IpcBatch>), ClientError> {
        let (reader, writer) = self.io();
        open_stream(reader, writer, None, method, params, header, io)
    }

    fn shut(&mut self) -> Result<(), ClientError> {
        self.close()
    }
}

impl<C: Connection> Engine for ShmTransport<C> {
    type Stream<'a>
        = PipeStream<'a, C::Reader, C::Writer>
    where
        Self: 'a;

    fn unary(
        &mut self,
        method: &str,
        params: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<IpcBatch, ClientError> {
        let (connection, segment) = self.parts();
        let (reader, writer) = connection.io();
        unary(reader, writer, Some(segment), method, params, io)
    }

    fn open_stream(
        &mut self,
        method: &str,
        params: &RecordBatch,
        header: bool,
        io: &mut CallIo<'_>,
    ) -> Result<(Self::Stream<'_>, Option<IpcBatch>), ClientError> {
        let (connection, segment) = self.parts();
        let (reader, writer) = connection.io();
        open_stream(reader, writer, Some(segment), method, params, header, io)
    }

    fn shut(&mut self) -> Result<(), ClientError> {
        self.parts().0.close()
    }
}

fn unary<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    shm: Option<&ShmSegment>,
    method: &str,
    params: &RecordBatch,
    io: &mut CallIo<'_>,
) -> Result<IpcBatch, ClientError> {
    send_request(writer, shm, method, params)?;
    let mut response = open_response(reader, io.limits)?;
    let data = read_data(&mut response, shm, io);
    // Reading to the end of the response keeps the connection aligned on
    // the next call, whatever this one produced.
    let drained = response.drain().map_err(ClientError::from_wire);
    let data = data?;
    drained?;
    data.ok_or_else(|| {
        ClientError::Protocol(format!(
            "the response to {method}() ended without a result batch"
        ))
    })
}

fn open_stream<'a, R: Read, W: Write>(
    reader: &'a mut R,
    writer: &'a mut W,
    shm: Option<&'a ShmSegment>,
    method: &str,
    params: &RecordBatch,
    header: bool,
    io: &mut CallIo<'_>,
) -> Result<(PipeStream<'a, R, W>, Option<IpcBatch>), ClientError> {
    send_request(writer, shm, method, params)?;
    let header = if header {
        let mut response = open_response(&mut *reader, io.limits)?;
        let header = read_data(&mut response, shm, io);
        let drained = response.drain().map_err(ClientError::from_wire);
        let header = header?;
        drained?;
        header
    } else {
        None
    };
    let stream = PipeStream {
        output: Output::Pending(reader),
        shm,
        input: Input::NotStarted(writer),
    };
    Ok((stream, header))
}

/// Writes one request stream and flushes it; with a segment attached, the
/// request names it.
fn send_request<W: Write>(
    writer: &mut W,
    shm: Option<&ShmSegment>,
    method: &str,
    params: &RecordBatch,
) -> Result<(), ClientError> {
    let mut md = crate::trace::request_metadata(method);
    if let Some(segment) = shm {
        segment.begin_call(&mut md)?;
    }
    let mut stream =
        StreamWriter::try_new(&mut *writer, params.schema_ref()).map_err(ClientError::from_wire)?;
    stream.write(params, &md).map_err(ClientError::from_wire)?;
    stream
        .finish()
        .map_err(ClientError::from_wire)?
        .flush()
        .map_err(ClientError::from_io)
}

/// Reads up to the next data batch, delivering logs and resolving shared
/// memory pointers on the way; `Ok(None)` when the stream ended first.
fn read_data<R: Read>(
    reader: &mut StreamReader<R>,
    shm: Option<&ShmSegment>,
    io: &mut CallIo<'_>,
) -> Result<Option<IpcBatch>, ClientError> {
    receive(reader, io)?
        .map(|received| byte_stream_data(received, shm))
        .transpose()
}

/// The data a byte-stream connection answered, taken out of the segment
/// when it is a pointer into one; what only HTTP carries is an error here.
pub(crate) fn byte_stream_data(
    received: Received,
    shm: Option<&ShmSegment>,
) -> Result<IpcBatch, ClientError> {
    match received {
        Received::Data(batch) => Ok(batch),
        Received::Special(pointer, Special::ShmPointer) => match shm {
            Some(segment) => segment.take(pointer),
            None => Err(ClientError::Protocol(
                "the server sent a shared-memory pointer batch, but no segment is attached".into(),
            )),
        },
        Received::Special(_, Special::External(url)) => Err(ClientError::Protocol(format!(
            "the server sent an external-location batch ({url}), which this transport does not \
             resolve"
        ))),
        Received::Special(_, Special::StateToken) => Err(ClientError::Protocol(
            "the server sent a stream state token, which only the HTTP transport uses".into(),
        )),
    }
}

/// The output side: not yet opened (the server writes its output schema
/// only after it sees the client's first input message) or open.
enum Output<'a, R> {
    Pending(&'a mut R),
    Open(StreamReader<&'a mut R>),
    /// Opening failed: the connection is unusable.
    Broken,
}

/// The input side. The encoder writes straight to the connection: a large
/// batch's body goes from Arrow's encoding to the kernel without another
/// copy through an intermediate buffer.
enum Input<'a, W: Write> {
    NotStarted(&'a mut W),
    Open(Box<StreamWriter<&'a mut W>>),
    /// Ended, or broken by a failed write.
    Finished,
}

/// A stream on a byte-stream connection: one input and one output IPC
/// stream in lockstep.
pub struct PipeStream<'a, R, W: Write> {
    output: Output<'a, R>,
    shm: Option<&'a ShmSegment>,
    input: Input<'a, W>,
}

impl<R, W: Write> std::fmt::Debug for PipeStream<'_, R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeStream")
            .field("input_open", &matches!(self.input, Input::Open(_)))
            .field("shm", &self.shm.map(ShmSegment::name))
            .finish_non_exhaustive()
    }
}

impl<R: Read, W: Write> StreamEngine for PipeStream<'_, R, W> {
    fn tick(&mut self, io: &mut CallIo<'_>) -> Result<Option<IpcBatch>, ClientError> {
        let tick = empty_batch(&Arc::new(Schema::empty()));
        let answer = self.round_trip(&tick, io)?;
        if answer.is_none() {
            // The output ended; the server now waits for our input to end.
            self.finish_input(None)?;
        }
        Ok(answer)
    }

    fn exchange(
        &mut self,
        input: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        self.round_trip(input, io)
    }

    fn finish(&mut self, cancel: bool, io: &mut CallIo<'_>) -> Result<(), ClientError> {
        let cancel_md = Metadata::new().with(metadata::CANCEL, "1");
        self.finish_input(cancel.then_some(&cancel_md))?;
        self.drain_output(io)
    }
}

impl<'a, R: Read, W: Write> PipeStream<'a, R, W> {
    /// Writes one input batch and reads the answer: logs, then one data
    /// batch (`None` when the output ended instead).
    fn round_trip(
        &mut self,
        input: &RecordBatch,
        io: &mut CallIo<'_>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        self.write_input(input)?;
        self.open_output(io.limits)?;
        let Output::Open(reader) = &mut self.output else {
            return Err(ClientError::ConnectionClosed);
        };
        read_data(reader, self.shm, io)
    }

    /// Writes `batch` on the input stream, through the segment when one is
    /// attached and the batch fits in it.
    fn write_input(&mut self, batch: &RecordBatch) -> Result<(), ClientError> {
        if let Input::NotStarted(_) = self.input {
            let Input::NotStarted(connection) = std::mem::replace(&mut self.input, Input::Finished)
            else {
                unreachable!("matched just above");
            };
            let writer = StreamWriter::try_new(connection, batch.schema_ref())
                .map_err(ClientError::from_wire)?;
            self.input = Input::Open(Box::new(writer));
        }
        let Input::Open(input) = &mut self.input else {
            return Err(ClientError::StreamClosed);
        };
        let stored = match self.shm {
            Some(segment) => segment.offload(batch)?,
            None => None,
        };
        match stored {
            Some((pointer, md)) => input.write(&pointer, &md),
            None => input.write(batch, &Metadata::new()),
        }
        .map_err(codec_error)?;
        input.get_mut().flush().map_err(ClientError::from_io)
    }

    /// Ends the input stream once, optionally with a last (cancel) batch.
    ///
    /// With no input stream yet, a whole one is written on the empty schema:
    /// the server always reads exactly one input stream per call.
    fn finish_input(&mut self, last: Option<&Metadata>) -> Result<(), ClientError> {
        let mut input = match std::mem::replace(&mut self.input, Input::Finished) {
            Input::Finished => return Ok(()),
            Input::Open(input) => *input,
            Input::NotStarted(connection) => {
                StreamWriter::try_new(connection, &Arc::new(Schema::empty()))
                    .map_err(ClientError::from_wire)?
            }
        };
        if let Some(md) = last {
            let schema = input.schema().clone();
            input
                .write(&empty_batch(&schema), md)
                .map_err(codec_error)?;
        }
        let connection = input.finish().map_err(ClientError::from_wire)?;
        connection.flush().map_err(ClientError::from_io)
    }

    fn open_output(&mut self, limits: ReadLimits) -> Result<(), ClientError> {
        self.output = match std::mem::replace(&mut self.output, Output::Broken) {
            Output::Pending(reader) => Output::Open(open_response(reader, limits)?),
            other => other,
        };
        Ok(())
    }

    /// Reads the output stream to its end, delivering logs; server errors
    /// found there are dropped (the stream is being abandoned anyway).
    fn drain_output(&mut self, io: &mut CallIo<'_>) -> Result<(), ClientError> {
        self.open_output(io.limits)?;
        let Output::Open(reader) = &mut self.output else {
            return Err(ClientError::ConnectionClosed);
        };
        loop {
            match read_data(reader, self.shm, io) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(ClientError::Remote { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }
}

fn codec_error(source: vgirpc_wire::WireError) -> ClientError {
    match source {
        vgirpc_wire::WireError::Io(e) => ClientError::from_io(e),
        source => ClientError::Codec {
            context: "a stream input batch".into(),
            source,
        },
    }
}
